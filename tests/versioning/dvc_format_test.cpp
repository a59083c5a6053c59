#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "dvc_format.h"
#include "fedtrack/versioning/md5.h"

namespace fedtrack {
namespace {

TEST(Md5, KnownVectors) {
  // RFC 1321 test suite.
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5, StreamingFileMatchesWholeBuffer) {
  const std::string path = (std::filesystem::temp_directory_path() / ("fedtrack-md5-" + std::to_string(::getpid()))).string();
  std::string bytes(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 % 251);
  write_file_atomically(path, bytes);
  const FileDigest d = md5_file(path);
  EXPECT_EQ(d.md5, md5_hex(bytes));
  EXPECT_EQ(d.size, bytes.size());
  std::filesystem::remove(path);
}

TEST(DvcFile, ByteExactWithWhatDvcAddWrites) {
  // The .dvc file `dvc add models/global.pt` wrote for a 1000-byte file (DVC 3.67).
  const std::string dvc_wrote =
      "outs:\n"
      "- md5: 0d8e0cbbed5521a4e1275f644c2ad846\n"
      "  size: 1000\n"
      "  hash: md5\n"
      "  path: global.pt\n";
  EXPECT_EQ(render_dvc_file({"0d8e0cbbed5521a4e1275f644c2ad846", 1000, "md5", "global.pt"}), dvc_wrote);
  const DvcOutput parsed = parse_dvc_file(dvc_wrote, "global.pt.dvc");
  EXPECT_EQ(parsed.md5, "0d8e0cbbed5521a4e1275f644c2ad846");
  EXPECT_EQ(parsed.size, 1000u);
  EXPECT_FALSE(parsed.legacy());
}

TEST(DvcFile, LegacyDvc2OutputsUseTheOldCacheLayout) {
  const DvcOutput legacy = parse_dvc_file("outs:\n- md5: 0d8e0cbbed5521a4e1275f644c2ad846\n  size: 3\n  path: a.bin\n", "a.bin.dvc");
  EXPECT_TRUE(legacy.legacy());
  EXPECT_EQ(object_path("/c", legacy.md5, true), "/c/0d/8e0cbbed5521a4e1275f644c2ad846");
  EXPECT_EQ(object_path("/c", legacy.md5, false), "/c/files/md5/0d/8e0cbbed5521a4e1275f644c2ad846");
}

TEST(DvcFile, GarbageIsCorruption) {
  EXPECT_THROW(parse_dvc_file("outs: [", "x.dvc"), Error);
  try {
    parse_dvc_file("outs:\n- md5: 1234\n  path: d\n", "x.dvc");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
  }
}

// Found by tests/fuzz (dvc_file): YAML is UTF-8, so a Latin-1 byte in a path
// came back from render + parse as U+FFFD, naming a file that does not exist.
TEST(DvcFile, PathsThatAreNotUtf8AreRefused) {
  try {
    parse_dvc_file("outs:\n- md5: 0d8e0cbbed5521a4e1275f644c2ad846\n  size: 3\n  path: mod\xe8le.pt\n", "x.dvc");
    FAIL() << "a non-UTF-8 path was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("x.dvc"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render_dvc_file({"0d8e0cbbed5521a4e1275f644c2ad846", 3, "md5", "mod\xe8le.pt"}), Error);
  const std::string utf8 = render_dvc_file({"0d8e0cbbed5521a4e1275f644c2ad846", 3, "md5", "mod\xc3\xa8le \x02.pt"});
  EXPECT_EQ(parse_dvc_file(utf8, "y.dvc").path, "mod\xc3\xa8le \x02.pt");
}

// Found by tests/fuzz (dvc_file): yaml-cpp writes U+FFFF in a quoted scalar
// (quoted because of the control character) as U+FFFD; such a path is refused
// rather than written as the name of another file.
TEST(DvcFile, APathThatWouldNotReadBackIsRefused) {
  EXPECT_THROW(render_dvc_file({"0d8e0cbbed5521a4e1275f644c2ad846", 3, "md5", "a\x15\xef\xbf\xbf.pt"}), Error);
  // Found by tests/fuzz (dvc_file) too: a path ending in CR is written
  // unquoted and its CR read back as part of the line break.
  EXPECT_THROW(render_dvc_file({"0d8e0cbbed5521a4e1275f644c2ad846", 3, "md5", "weights v2.bin\r"}), Error);
}

TEST(Gitignore, AddsOnceKeepsTheRestAndMendsTheLastLine) {
  EXPECT_EQ(gitignore_with("", "/global.pt"), "/global.pt\n");
  EXPECT_EQ(gitignore_with("*.log\n", "/global.pt"), "*.log\n/global.pt\n");
  EXPECT_EQ(gitignore_with("*.log", "/global.pt"), "*.log\n/global.pt\n");  // no trailing newline
  EXPECT_EQ(gitignore_with("a\n/global.pt\nb\n", "/global.pt"), "a\n/global.pt\nb\n");  // already there
  EXPECT_EQ(gitignore_with("/global.pt  \r\n", "/global.pt"), "/global.pt  \r\n");
}

TEST(DvcConfig, DefaultRemoteIsWrittenTheWayDvcWritesIt) {
  // What `dvc remote add -d storage /tmp/dvcremote` wrote into an empty config.
  const std::string dvc_wrote =
      "[core]\n"
      "    remote = storage\n"
      "['remote \"storage\"']\n"
      "    url = /tmp/dvcremote\n";
  EXPECT_EQ(dvc_config_with_remote("", "storage", "/tmp/dvcremote"), dvc_wrote);
  const auto parsed = parse_dvc_config(dvc_wrote);
  EXPECT_EQ(parsed.at("core").at("remote"), "storage");
  EXPECT_EQ(parsed.at("remote \"storage\"").at("url"), "/tmp/dvcremote");
  // Other settings survive.
  const std::string kept = dvc_config_with_remote("[core]\n    autostage = true\n", "r", "/x");
  EXPECT_EQ(parse_dvc_config(kept).at("core").at("autostage"), "true");
}

// Found by tests/fuzz (dvc_config): a section whose name has blanks or quotes
// at its edges was written bare, read back trimmed or unquoted, and so its
// keys moved to another section when fedtrack added its remote.
TEST(DvcConfig, AddingTheRemoteKeepsSectionsWhoseNamesNeedQuotes) {
  const std::string existing = "['\tcache']\n    dir = /a\n[''x'']\n    y = 1\n";
  const auto before = parse_dvc_config(existing);
  ASSERT_EQ(before.count("\tcache"), 1u);
  ASSERT_EQ(before.count("'x'"), 1u);
  const auto after = parse_dvc_config(dvc_config_with_remote(existing, "storage", "/r"));
  EXPECT_EQ(after.at("\tcache").at("dir"), "/a");
  EXPECT_EQ(after.at("'x'").at("y"), "1");
  EXPECT_EQ(after.at("core").at("remote"), "storage");
}

TEST(DvcInit, FilesMatchDvcInit) {
  EXPECT_STREQ(kDvcGitignore, "/config.local\n/tmp\n/cache\n");
  EXPECT_EQ(std::string(kDvcignore).rfind("# Add patterns of files dvc should ignore", 0), 0u);
}

}  // namespace
}  // namespace fedtrack
