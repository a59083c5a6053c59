// versioning.push against a local bare origin (the credential paths are
// tested against real servers in tests/integration/test_git_push.py): rounds
// whose push failed go with the next push, rebased with their tags when
// origin moved on.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fedtrack/core/error.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

class Push : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-push");
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    for (const char* k : {"GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"}) setenv(k, "Other", 1);
    for (const char* k : {"GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"}) setenv(k, "other@example.com", 1);
    origin_ = (dir_ / "origin.git").string();
    options_.repo = (dir_ / "models").string();
    options_.push = true;
    git("init -q --bare -b main " + origin_);
    git("init -q -b main " + options_.repo);
    git("-C " + options_.repo + " remote add origin " + origin_);
  }
  void TearDown() override {
    for (const char* k : {"GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"}) unsetenv(k);
    testing::remove_test_dir(dir_);
  }

  static void git(const std::string& args) {
    ASSERT_EQ(std::system(("git " + args + " >/dev/null 2>&1").c_str()), 0) << "git " << args;
  }
  static std::string git_out(const std::string& args) {
    std::string out;
    FILE* p = ::popen(("git " + args + " 2>/dev/null").c_str(), "r");
    char buf[256];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  fs::path dir_;
  std::string origin_;
  VersioningOptions options_;
};

TEST_F(Push, FailedRoundsGoWithTheNextPushRebasedOntoAMovedOrigin) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 3, "weights one", {}, {});
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse main"), r1.commit);

  // Another clone pushes an unrelated file.
  const std::string other = (dir_ / "other").string();
  git("clone -q " + origin_ + " " + other);
  std::ofstream(other + "/NOTES.md") << "notes\n";
  git("-C " + other + " add NOTES.md");
  git("-C " + other + " commit -q -m notes");
  git("-C " + other + " push -q origin main");
  const std::string notes = git_out("-C " + other + " rev-parse HEAD");

  // Round 2's push fails (origin unreachable): its commit and tag stay, the error says so.
  git("-C " + options_.repo + " remote set-url origin " + (dir_ / "gone.git").string());
  try {
    repo.commit_round("job-1", "demo", 2, 3, "weights two", {}, {});
    FAIL() << "the push to a missing origin must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tag fedtrack/job-1/round-002 stay in"), std::string::npos) << e.what();
  }
  const std::string tag2 = "fedtrack/job-1/round-002";
  const std::string before = git_out("-C " + options_.repo + " rev-parse " + tag2 + "^{commit}");
  ASSERT_FALSE(before.empty());

  // Round 3 pushes: origin moved on (notes), so rounds 2 and 3 are rebased onto it, tags and all.
  git("-C " + options_.repo + " remote set-url origin " + origin_);
  std::string logged;
  options_.log = [&](const std::string& line) { logged += line + "\n"; };
  ModelRepository reopened(options_);
  const RoundCommit r3 = reopened.commit_round("job-1", "demo", 3, 3, "weights three", {}, {});
  EXPECT_NE(logged.find("rebased 2 round commit(s)"), std::string::npos) << logged;
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse main"), r3.commit);
  EXPECT_EQ(git_out("-C " + options_.repo + " rev-parse HEAD"), r3.commit);
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse fedtrack/job-1/round-003^{commit}"), r3.commit);
  const std::string after = git_out("-C " + origin_ + " rev-parse " + tag2 + "^{commit}");
  EXPECT_NE(after, before);
  EXPECT_EQ(after, git_out("-C " + options_.repo + " rev-parse " + tag2 + "^{commit}"));
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse " + tag2 + "^{commit}~1"), notes);
  EXPECT_TRUE(fs::exists(fs::path(options_.repo) / "NOTES.md"));
  EXPECT_EQ(git_out("-C " + options_.repo + " status --porcelain"), "");
  // The rebased round keeps its model and trailers: restore by its tag gives its bytes.
  const RestoreResult restored = restore_model(options_.repo, tag2, "models/global.pt", (dir_ / "r2.pt").string());
  EXPECT_EQ(restored.md5, md5_hex("weights two"));
  EXPECT_NE(git_out("-C " + options_.repo + " log -1 --format=%B " + tag2).find("fedtrack-round: 2"),
            std::string::npos);
}

TEST_F(Push, OriginChangingFedtracksFilesIsAClearErrorAndNothingIsRebased) {
  ModelRepository repo(options_);
  repo.commit_round("job-1", "demo", 1, 2, "weights one", {}, {});
  const std::string other = (dir_ / "other").string();
  git("clone -q " + origin_ + " " + other);
  std::ofstream(other + "/dvclive/metrics.json") << "{\"edited\": 1}\n";
  git("-C " + other + " commit -q -am edited-by-hand");
  git("-C " + other + " push -q origin main");
  const std::string origin_head = git_out("-C " + origin_ + " rev-parse main");
  try {
    repo.commit_round("job-1", "demo", 2, 2, "weights two", {}, {});
    FAIL() << "origin changed a file fedtrack writes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("also changes dvclive/metrics.json"), std::string::npos) << e.what();
  }
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse main"), origin_head);
  EXPECT_FALSE(git_out("-C " + options_.repo + " rev-parse fedtrack/job-1/round-002").empty());
}

// Promotion tags go through the same push: only what origin lacks, so a
// retried promotion pushes the version tag an earlier push missed.
TEST_F(Push, GtoTagsArePushedWhenOriginLacksThem) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 1, "weights one", {}, {});
  const std::string tag = gto_register(options_.repo, "demo-model", "v0.0.1", r1.commit, "");
  git("-C " + options_.repo + " remote set-url origin " + (dir_ / "gone.git").string());
  EXPECT_THROW(push_tags_if_remote(options_.repo, {tag}), Error);
  git("-C " + options_.repo + " remote set-url origin " + origin_);
  EXPECT_TRUE(push_tags_if_remote(options_.repo, {tag}));
  EXPECT_EQ(git_out("-C " + origin_ + " rev-parse " + tag + "^{commit}"), r1.commit);
  EXPECT_TRUE(push_tags_if_remote(options_.repo, {tag}));  // already there: nothing to do, no error
  git("-C " + options_.repo + " remote remove origin");
  EXPECT_FALSE(push_tags_if_remote(options_.repo, {tag}));
}

}  // namespace
}  // namespace fedtrack
