// The CLI's exit table and its error edge (connectors/exit_status.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "fedtrack/connectors/exit_status.h"

namespace fedtrack {
namespace {

// README.md, "Exit statuses".
TEST(ExitTable, EveryCodeHasTheReadmesStatus) {
  EXPECT_EQ(exit_status_for(ErrorCode::kInvalidArgument), 2);
  EXPECT_EQ(exit_status_for(ErrorCode::kNotFound), 3);
  EXPECT_EQ(exit_status_for(ErrorCode::kUnavailable), 4);
  EXPECT_EQ(exit_status_for(ErrorCode::kCorruption), 5);
  EXPECT_EQ(exit_status_for(ErrorCode::kPermissionDenied), 6);
  EXPECT_EQ(exit_status_for(ErrorCode::kUnauthenticated), 6);
  EXPECT_EQ(exit_status_for(ErrorCode::kFailedPrecondition), 7);
  EXPECT_EQ(exit_status_for(ErrorCode::kAlreadyExists), 7);
  EXPECT_EQ(exit_status_for(ErrorCode::kCancelled), 130);
  EXPECT_EQ(exit_status_for(ErrorCode::kInternal), 1);
}

TEST(ErrorEdge, AnErrorIsOneRedactedValidLineAndItsStatus) {
  std::ostringstream err;
  const int status = run_guarded(err, []() -> int {
    throw Error::unavailable("cannot reach https://alice:s3cret@mlflow.example/api\nretrying \xff");
  });
  EXPECT_EQ(status, 4);
  const std::string line = err.str();
  EXPECT_EQ(line.find("s3cret"), std::string::npos) << line;
  EXPECT_EQ(line.rfind("fedtrack: cannot reach https://", 0), 0u) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;           // exactly one line
  EXPECT_NE(line.find("retrying \xEF\xBF\xBD"), std::string::npos) << line;  // U+FFFD
}

TEST(ErrorEdge, AnyOtherExceptionIsAnInternalErrorNeverATerminate) {
  std::ostringstream err;
  EXPECT_EQ(run_guarded(err, []() -> int {
              throw std::filesystem::filesystem_error("status", std::filesystem::path("/x"),
                                                      std::make_error_code(std::errc::filename_too_long));
            }),
            1);
  EXPECT_EQ(err.str().rfind("fedtrack: internal error: filesystem error: status", 0), 0u) << err.str();
  std::ostringstream unknown;
  EXPECT_EQ(run_guarded(unknown, []() -> int { throw 7; }, "fedtrack client: "), 1);
  EXPECT_EQ(unknown.str(), "fedtrack client: internal error: an unknown exception\n");
  std::ostringstream quiet;
  EXPECT_EQ(run_guarded(quiet, [] { return 3; }), 3);  // a command's own status passes through
  EXPECT_EQ(quiet.str(), "");
}

}  // namespace
}  // namespace fedtrack
