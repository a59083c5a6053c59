// CI outputs (connectors/src/ci_outputs.h): the exact bytes written for
// GitHub Actions and GitLab, appending, and a clear error when the file
// cannot be written.
#include "ci_outputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fedtrack/core/error.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

class CiOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_test_dir("fedtrack-ci-outputs"); }
  void TearDown() override { testing::remove_test_dir(dir_); }
  fs::path dir_;
};

TEST(CiOutputs, SetReplacesInPlaceAndKeepsOrder) {
  CiOutputs o;
  o.set("promoted", "false");
  o.set("run_id", "r1");
  o.set("promoted", "true");
  EXPECT_EQ(o.items(), (CiOutputs::Items{{"promoted", "true"}, {"run_id", "r1"}}));
}

TEST(CiOutputs, GithubOutputIsKeyValueLines) {
  CiOutputs o;
  o.set("promoted", "true");
  o.set("eval_accuracy", "0.8");
  o.set("empty", "");
  EXPECT_EQ(github_output_text(o), "promoted=true\neval_accuracy=0.8\nempty=\n");
}

TEST(CiOutputs, AMultiLineValueIsAHeredocWhoseDelimiterTheValueNeverHolds) {
  CiOutputs o;
  o.set("note", "line one\nline two");
  o.set("crlf", "a\r\nb");
  o.set("forged", "x\nFEDTRACK_EOF\nFEDTRACK_EOF_1\nevil=1");
  EXPECT_EQ(github_output_text(o),
            "note<<FEDTRACK_EOF\nline one\nline two\nFEDTRACK_EOF\n"
            "crlf<<FEDTRACK_EOF\na\r\nb\nFEDTRACK_EOF\n"
            "forged<<FEDTRACK_EOF_2\nx\nFEDTRACK_EOF\nFEDTRACK_EOF_1\nevil=1\nFEDTRACK_EOF_2\n");
}

TEST(CiOutputs, DotenvKeysAreUpperCasedAndValuesOneLine) {
  CiOutputs o;
  o.set("champion_eval-accuracy", "0.8");
  o.set("note", "two\nlines\r");
  EXPECT_EQ(dotenv_text(o), "FEDTRACK_CHAMPION_EVAL_ACCURACY=0.8\nFEDTRACK_NOTE=two lines \n");
}

TEST_F(CiOutputsTest, GithubFilesAreAppendedNotTruncated) {
  const fs::path output = dir_ / "output", summary = dir_ / "summary.md";
  std::ofstream(output) << "earlier=step\n";
  std::ofstream(summary) << "# earlier\n";
  CiOutputs o;
  o.set("promoted", "true");
  append_github_output(output.string(), o);
  append_github_output(output.string(), o);
  append_step_summary(summary.string(), "### fedtrack\n");
  EXPECT_EQ(slurp(output), "earlier=step\npromoted=true\npromoted=true\n");
  EXPECT_EQ(slurp(summary), "# earlier\n### fedtrack\n");
  // A file that does not exist yet is created.
  append_step_summary((dir_ / "new.md").string(), "x\n");
  EXPECT_EQ(slurp(dir_ / "new.md"), "x\n");
}

TEST_F(CiOutputsTest, TheDotenvReportIsWrittenWhole) {
  const fs::path dotenv = dir_ / "promote.env";
  std::ofstream(dotenv) << "FEDTRACK_STALE=1\n";
  CiOutputs o;
  o.set("promoted", "false");
  write_dotenv(dotenv.string(), o);
  EXPECT_EQ(slurp(dotenv), "FEDTRACK_PROMOTED=false\n");
}

TEST_F(CiOutputsTest, AnUnwritablePathIsAClearError) {
  CiOutputs o;
  o.set("promoted", "true");
  const std::string missing = (dir_ / "no-such-folder" / "output").string();
  for (const auto& write : std::vector<std::function<void()>>{
           [&] { append_github_output(missing, o); }, [&] { append_step_summary(missing, "x"); },
           [&] { append_github_output(dir_.string(), o); }}) {
    try {
      write();
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      EXPECT_NE(std::string(e.what()).find("cannot append to " + dir_.string()), std::string::npos) << e.what();
    }
  }
  fs::create_directories(dir_ / "locked");
  fs::permissions(dir_ / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {  // root writes anywhere
    EXPECT_THROW(write_dotenv((dir_ / "locked" / "promote.env").string(), o), Error);
  }
  fs::permissions(dir_ / "locked", fs::perms::owner_all);
}

}  // namespace
}  // namespace fedtrack
