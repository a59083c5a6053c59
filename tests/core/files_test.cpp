// read_file / open_regular_file: anything but a regular file is a clear
// Error, never a hang (FIFO) or a crash (directory).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

ErrorCode code_of_reading(const std::string& path, std::string* message) {
  try {
    read_file(path);
  } catch (const Error& e) {
    *message = e.what();
    return e.code();
  }
  return ErrorCode::kInternal;
}

TEST(Files, OnlyRegularFilesAreRead) {
  ::alarm(30);  // a FIFO that blocks fails the test instead of hanging the suite
  const fs::path dir = testing::make_test_dir("fedtrack-files");
  write_file_atomically((dir / "plain").string(), std::string("a\0b", 3));
  EXPECT_EQ(read_file((dir / "plain").string()), std::string("a\0b", 3));

  std::string message;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0644), 0);
  EXPECT_EQ(code_of_reading((dir / "fifo").string(), &message), ErrorCode::kInvalidArgument);
  EXPECT_EQ(message, (dir / "fifo").string() + " is not a regular file (a FIFO)");

  fs::create_directories(dir / "folder");
  EXPECT_EQ(code_of_reading((dir / "folder").string(), &message), ErrorCode::kInvalidArgument);
  EXPECT_EQ(message, (dir / "folder").string() + " is not a regular file (a directory)");

  EXPECT_EQ(code_of_reading((dir / "missing").string(), &message), ErrorCode::kNotFound);
  EXPECT_NE(message.find((dir / "missing").string()), std::string::npos);
  EXPECT_EQ(code_of_reading("/dev/null", &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("a character device"), std::string::npos);
  ::alarm(0);
  testing::remove_test_dir(dir);
}

}  // namespace
}  // namespace fedtrack
