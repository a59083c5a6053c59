// A model repository named by a git URL (file:// to a local bare repository
// here; HTTP with credentials in tests/integration/test_ci_two_workspaces.py):
// the cache folder, an empty remote, two workspaces extending one history,
// and the reachability check promote runs before it says a candidate passes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fedtrack/core/error.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "fedtrack/versioning/repository_url.h"
#include "fedtrack/versioning/round_reachability.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

TEST(RepositoryUrl, TellsUrlsFromFolders) {
  for (const char* url : {"https://git.example.com/team/models.git", "http://127.0.0.1:8080/m.git",
                          "ssh://git@host:2222/m.git", "git@github.com:team/models.git", "file:///srv/m.git"}) {
    EXPECT_TRUE(is_git_url(url)) << url;
  }
  for (const char* folder : {"fedtrack-models", "/abs/models", "./a:b", "rel/dir:x", ""}) {
    EXPECT_FALSE(is_git_url(folder)) << folder;
  }
}

TEST(RepositoryUrl, CacheFolderIsNamedByHostAndPathWithoutCredentials) {
  setenv("FEDTRACK_REPO_CACHE", "/cache", 1);
  EXPECT_EQ(repository_cache_folder("https://ci-bot@git.example.com/team/models.git"),
            "/cache/git.example.com/team/models");
  EXPECT_EQ(repository_cache_folder("http://127.0.0.1:8080/a/../m.git?x=1"), "/cache/127.0.0.1_8080/a/_../m");
  EXPECT_EQ(repository_cache_folder("git@github.com:team/models.git"), "/cache/github.com/team/models");
  EXPECT_EQ(repository_cache_folder("file:///srv/m.git"), "/cache/local/srv/m");
  try {
    repository_cache_folder("https://bot:s3cret@git.example.com/team/models.git");
    FAIL() << "a password in the URL is refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("FEDTRACK_GIT_TOKEN"), std::string::npos) << e.what();
  }
  unsetenv("FEDTRACK_REPO_CACHE");
}

class UrlRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-url");
    setenv("HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    origin_ = (dir_ / "origin.git").string();
    url_ = "file://" + origin_;
    ASSERT_EQ(std::system(("git init -q --bare -b main " + origin_).c_str()), 0);
  }
  void TearDown() override {
    unsetenv("FEDTRACK_REPO_CACHE");
    testing::remove_test_dir(dir_);
  }
  // A fresh workspace: its own cache folder and DVC cache.
  VersioningOptions workspace(const std::string& name) {
    setenv("FEDTRACK_REPO_CACHE", (dir_ / name).c_str(), 1);
    VersioningOptions o;
    o.repo = url_;
    o.remote = (dir_ / "dvc-remote").string();
    return o;
  }
  std::string origin_head() {
    std::string out;
    FILE* p = ::popen(("git --git-dir " + origin_ + " rev-parse -q --verify main 2>/dev/null").c_str(), "r");
    char buf[128];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  fs::path dir_;
  std::string origin_, url_;
};

TEST_F(UrlRepository, TwoWorkspacesExtendOneHistoryStartingFromAnEmptyRemote) {
  RoundCommit first;
  {
    ModelRepository repo(workspace("ws1"));
    EXPECT_EQ(repo.location(), url_);
    EXPECT_TRUE(repo.options().push);  // implied for a URL
    EXPECT_EQ(repo.root(), (dir_ / "ws1" / "local" / fs::path(origin_).relative_path()).replace_extension().string());
    first = repo.commit_round("job-1", "demo", 1, 1, "weights one", {}, {});
  }
  EXPECT_EQ(origin_head(), first.commit);
  gto_register(repository_cache_folder(url_), "demo", "v0.0.1", first.commit, "");
  push_tags_if_remote(repository_cache_folder(url_), {"demo@v0.0.1"});

  ModelRepository second_ws(workspace("ws2"));
  const RoundCommit second = second_ws.commit_round("job-2", "demo", 1, 1, "weights two", {}, {});
  EXPECT_EQ(origin_head(), second.commit);
  // Run 2's commit sits on run 1's, and the version tag of run 1 came with the fetch.
  EXPECT_EQ(std::system(("git --git-dir " + origin_ + " merge-base --is-ancestor " + first.commit + " " + second.commit)
                            .c_str()),
            0);
  EXPECT_EQ(gto_next_version(second_ws.root(), "demo"), "v0.0.2");
}

TEST_F(UrlRepository, AVersionTagAnotherWorkspacePushedFirstIsAnErrorNotSkipped) {
  RoundCommit a, b;
  {
    ModelRepository ws1(workspace("ws1"));
    a = ws1.commit_round("job-1", "demo", 1, 1, "weights one", {}, {});
  }
  {
    ModelRepository ws2(workspace("ws2"));
    b = ws2.commit_round("job-2", "demo", 1, 1, "weights two", {}, {});
  }
  // Both promote "the next version" from what they fetched: v0.0.1.
  const std::string ws1 = (dir_ / "ws1" / "local" / fs::path(origin_).relative_path()).replace_extension().string();
  const std::string ws2 = (dir_ / "ws2" / "local" / fs::path(origin_).relative_path()).replace_extension().string();
  gto_register(ws1, "demo", "v0.0.1", a.commit, "");
  EXPECT_TRUE(push_tags_if_remote(ws1, {"demo@v0.0.1"}));
  gto_register(ws2, "demo", "v0.0.1", b.commit, "");
  try {
    push_tags_if_remote(ws2, {"demo@v0.0.1"});
    FAIL() << "origin's demo@v0.0.1 names another commit: the push must not skip it silently";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("demo@v0.0.1 exists on origin already"), std::string::npos) << e.what();
  }
  // The same tag (fetched) is "there already", fine.
  setenv("FEDTRACK_REPO_CACHE", (dir_ / "ws3").c_str(), 1);
  const std::string ws3 = sync_repository_url(url_);
  EXPECT_TRUE(push_tags_if_remote(ws3, {"demo@v0.0.1"}));
}

TEST_F(UrlRepository, ReachabilityNamesAMissingCommitOrObject) {
  RoundCommit round;
  {
    ModelRepository repo(workspace("ws1"));
    round = repo.commit_round("job-1", "demo", 1, 1, "weights", {}, {});
  }
  setenv("FEDTRACK_REPO_CACHE", (dir_ / "ws2").c_str(), 1);  // a fresh workspace: no DVC cache
  const RoundReachability ok = check_round_reachable(url_, round.commit, "models/global.pt", round.md5);
  EXPECT_EQ(ok.commit, round.commit);
  EXPECT_NE(ok.object.find("dvc-remote"), std::string::npos) << ok.object;

  // A commit the repository does not have.
  const std::string stranger(40, 'a');
  try {
    check_round_reachable(url_, stranger, "models/global.pt", "");
    FAIL() << "an unknown commit is never reachable";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("is not in the model repository"), std::string::npos) << e.what();
  }

  // The object gone from the remote (and not in this workspace's cache).
  fs::permissions(dir_ / "dvc-remote", fs::perms::owner_all, fs::perm_options::add);
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "dvc-remote")) {
    if (e.is_regular_file()) fs::remove(e.path());
  }
  try {
    check_round_reachable(url_, round.commit, "models/global.pt", round.md5);
    FAIL() << "an object nowhere is never reachable";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("cannot be fetched"), std::string::npos) << e.what();
  }
  // And an md5 other than the run's is corruption.
  try {
    check_round_reachable(url_, round.commit, "models/global.pt", std::string(32, '0'));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
  }
}

}  // namespace
}  // namespace fedtrack
