#include <gtest/gtest.h>
#include <git2.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "fedtrack/versioning/source_commit.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

class Repo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-repo");
    options_.repo = (dir_ / "models-repo").string();
    options_.remote = (dir_ / "remote").string();
    // No git identity anywhere: the fallback must work.
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  }
  void TearDown() override { testing::remove_test_dir(dir_); }
  fs::path dir_;
  VersioningOptions options_;
};

// The source commit of a job file comes from libgit2, through loose refs,
// packed refs, a detached HEAD and paths that do not exist yet.
TEST_F(Repo, CheckedOutCommitFollowsHead) {
  EXPECT_EQ(checked_out_commit((dir_ / "no-repo-here" / "job.yaml").string()), "");
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 2, "weights one", {}, {});
  EXPECT_EQ(checked_out_commit(options_.repo), r1.commit);
  EXPECT_EQ(checked_out_commit(options_.repo + "/models/global.pt"), r1.commit);
  EXPECT_EQ(checked_out_commit(options_.repo + "/jobs/not-yet/job.yaml"), r1.commit);

  const RoundCommit r2 = repo.commit_round("job-1", "demo", 2, 2, "weights two", {}, {});
  git_repository* g = nullptr;
  ASSERT_EQ(git_repository_open(&g, options_.repo.c_str()), 0);
  git_refdb* refdb = nullptr;
  ASSERT_EQ(git_repository_refdb(&refdb, g), 0);
  ASSERT_EQ(git_refdb_compress(refdb), 0);  // the branch now lives in packed-refs only
  git_refdb_free(refdb);
  EXPECT_EQ(checked_out_commit(options_.repo), r2.commit);

  git_oid first;
  ASSERT_EQ(git_oid_fromstr(&first, r1.commit.c_str()), 0);
  ASSERT_EQ(git_repository_set_head_detached(g, &first), 0);
  git_repository_free(g);
  EXPECT_EQ(checked_out_commit(options_.repo), r1.commit);
}

// MLflow's mlflow.source.git.branch / repoURL: the checked-out branch and
// the origin remote without credentials; neither for a detached HEAD or a
// repository without an origin.
TEST_F(Repo, SourceRepositoryIsTheBranchAndTheOriginWithoutCredentials) {
  const SourceRepository none = source_repository((dir_ / "no-repo-here" / "job.yaml").string());
  EXPECT_EQ(none.branch, "");
  EXPECT_EQ(none.repo_url, "");
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 1, "weights", {}, {});
  git_repository* g = nullptr;
  ASSERT_EQ(git_repository_open(&g, options_.repo.c_str()), 0);
  git_reference* head = nullptr;
  ASSERT_EQ(git_repository_head(&head, g), 0);
  const std::string branch = git_reference_shorthand(head);
  git_reference_free(head);
  SourceRepository s = source_repository(options_.repo + "/jobs/job.yaml");
  EXPECT_EQ(s.branch, branch);
  EXPECT_EQ(s.repo_url, "");
  git_remote* origin = nullptr;
  ASSERT_EQ(git_remote_create(&origin, g, "origin", "https://alice:s3cret@git.example.com/team/fl.git?token=t0k"), 0);
  git_remote_free(origin);
  s = source_repository(options_.repo);
  EXPECT_EQ(s.repo_url, "https://git.example.com/team/fl.git?token=REDACTED");
  git_oid first;
  ASSERT_EQ(git_oid_fromstr(&first, r1.commit.c_str()), 0);
  ASSERT_EQ(git_repository_set_head_detached(g, &first), 0);
  git_repository_free(g);
  EXPECT_EQ(source_repository(options_.repo).branch, "");
}

TEST_F(Repo, EachRoundIsACommitRestorableByTagAndSha) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 2, "weights one", {{"eval_accuracy", 0.5}}, {});
  const RoundCommit r2 = repo.commit_round("job-1", "demo", 2, 2, "weights two", {{"eval_accuracy", 0.7}},
                                           [] {
                                             Lineage l;
                                             l.run_id = "abc";
                                             return l;
                                           }());
  EXPECT_EQ(r1.md5, md5_hex("weights one"));
  EXPECT_EQ(r2.tag, "fedtrack/job-1/round-002");
  const fs::path object = fs::path(options_.repo) / ".dvc/cache/files/md5" / r1.md5.substr(0, 2) / r1.md5.substr(2);
  ASSERT_TRUE(fs::exists(object));
  struct stat st {};
  ::stat(object.c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(fs::exists(fs::path(options_.remote) / "files/md5" / r2.md5.substr(0, 2) / r2.md5.substr(2)));
  EXPECT_EQ(read_file((fs::path(options_.repo) / "models/.gitignore").string()), "/global.pt\n");

  const std::string out = (dir_ / "restored.pt").string();
  for (const std::string& rev : {r1.tag, r1.commit, r1.commit.substr(0, 8), std::string("HEAD~1")}) {
    const RestoreResult r = restore_model(options_.repo, rev, "models/global.pt", out);
    EXPECT_EQ(r.md5, r1.md5) << rev;
    EXPECT_EQ(read_file(out), "weights one") << rev;
  }
  EXPECT_EQ(restore_model(options_.repo, "HEAD", "models/global.pt", out).md5, r2.md5);

  const auto history = model_history(options_.repo);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].round, 1);
  EXPECT_EQ(history[1].tag, r2.tag);
  EXPECT_EQ(history[1].md5, r2.md5);
  EXPECT_DOUBLE_EQ(history[1].metrics.at("eval_accuracy"), 0.7);
}

// versioning.remote empty: the default remote `dvc remote add -d` wrote
// (a folder relative to .dvc/) gets each round's object, as `dvc push`
// would; a remote fedtrack cannot push to is refused before any round.
// versioning.export's files: a second output each, in the cache, the remote,
// its own .dvc, ignored by git beside the model, an artifact in dvc.yaml.
TEST_F(Repo, ExtraOutputsAreTrackedBesideTheModel) {
  ModelRepository repo(options_);
  const RoundCommit r = repo.commit_round("job-1", "demo", 1, 1, "weights", {}, {}, {{"models/global.onnx", "onnx bytes"}});
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].md5, md5_hex("onnx bytes"));
  const fs::path top(options_.repo);
  EXPECT_EQ(read_file((top / "models/global.onnx.dvc").string()),
            "outs:\n- md5: " + md5_hex("onnx bytes") + "\n  size: 10\n  hash: md5\n  path: global.onnx\n");
  EXPECT_EQ(read_file((top / "models/.gitignore").string()), "/global.pt\n/global.onnx\n");
  // Named after the model's artifact (the job's name, "demo"), plus what the file name adds.
  EXPECT_NE(read_file((top / "dvc.yaml").string()).find("  demo-onnx:\n    path: models/global.onnx\n    type: model\n"),
            std::string::npos);
  const std::string m = md5_hex("onnx bytes");
  EXPECT_EQ(read_file((top / ".dvc/cache/files/md5" / m.substr(0, 2) / m.substr(2)).string()), "onnx bytes");
  EXPECT_EQ(read_file((dir_ / "remote/files/md5" / m.substr(0, 2) / m.substr(2)).string()), "onnx bytes");
  const std::string out = (dir_ / "back.onnx").string();
  EXPECT_EQ(restore_model(options_.repo, r.tag, "models/global.onnx", out).md5, m);
  EXPECT_EQ(read_file(out), "onnx bytes");

  // Bad paths are refused before anything is written.
  for (const std::string bad : {"models/global.pt", "../x.onnx", "/tmp/x.onnx", ".dvc/x.onnx", "x.onnx.dvc"}) {
    try {
      repo.commit_round("job-1", "demo", 2, 2, "weights 2", {}, {}, {{bad, "x"}});
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(top / ".dvc/cache/files/md5" / md5_hex("weights 2").substr(0, 2)));

  // The export turned off: the next round's commit no longer names the old file.
  const RoundCommit r2 = repo.commit_round("job-1", "demo", 2, 2, "weights 2", {}, {});
  EXPECT_FALSE(fs::exists(top / "models/global.onnx.dvc"));
  EXPECT_FALSE(fs::exists(top / "models/global.onnx"));
  EXPECT_EQ(read_file((top / "dvc.yaml").string()).find("onnx"), std::string::npos);
  try {
    restore_model(options_.repo, r2.tag, "models/global.onnx", out);
    ADD_FAILURE() << "restored round 1's ONNX file at round 2";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
  EXPECT_EQ(restore_model(options_.repo, r.tag, "models/global.onnx", out).md5, m);
}

TEST_F(Repo, DefaultRemoteFromDvcConfigGetsEveryObject) {
  VersioningOptions options = options_;
  options.remote = "";
  fs::create_directories(fs::path(options.repo) / ".dvc");
  write_file_atomically((fs::path(options.repo) / ".dvc" / "config").string(),
                        "[core]\n    remote = shared\n['remote \"shared\"']\n    url = ../../shared-remote\n");
  ModelRepository repo(options);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 1, "weights", {}, {});
  const fs::path object = dir_ / "shared-remote" / "files/md5" / r1.md5.substr(0, 2) / r1.md5.substr(2);
  ASSERT_TRUE(fs::exists(object));
  EXPECT_EQ(read_file(object.string()), "weights");
  // The config is left as the user wrote it.
  EXPECT_NE(read_file((fs::path(options.repo) / ".dvc" / "config").string()).find("remote = shared"),
            std::string::npos);

  write_file_atomically((fs::path(options.repo) / ".dvc" / "config").string(),
                        "[core]\n    remote = cloud\n['remote \"cloud\"']\n    url = gs://bucket/x\n");
  try {
    ModelRepository refused(options);
    FAIL() << "a gs:// default remote was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("DVC remote 'cloud' (gs://bucket/x)"), std::string::npos) << e.what();
  }
}

TEST_F(Repo, RestoreErrorsAreClearAndWriteNothing) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 1, "weights", {}, {});
  const std::string out = (dir_ / "never.pt").string();
  auto code_of = [&](const std::string& rev, const std::string& path) {
    try {
      restore_model(options_.repo, rev, path, out);
    } catch (const Error& e) {
      return std::make_pair(e.code(), std::string(e.what()));
    }
    return std::make_pair(ErrorCode::kInternal, std::string("restored"));
  };
  auto [unknown, message] = code_of("no-such-rev", "models/global.pt");
  EXPECT_EQ(unknown, ErrorCode::kNotFound);
  EXPECT_NE(message.find("unknown revision 'no-such-rev'"), std::string::npos) << message;
  EXPECT_EQ(code_of("HEAD", "models/other.pt").first, ErrorCode::kNotFound);

  // Corrupt cache copy: the remote's good copy is used.
  const fs::path cached = fs::path(options_.repo) / ".dvc/cache/files/md5" / r1.md5.substr(0, 2) / r1.md5.substr(2);
  fs::permissions(cached, fs::perms::owner_write, fs::perm_options::add);
  write_file_atomically(cached.string(), "tampered");
  EXPECT_EQ(restore_model(options_.repo, "HEAD", "models/global.pt", out).source, "remote");
  EXPECT_EQ(read_file(out), "weights");
  fs::remove(out);
  // Corrupt everywhere: corruption, nothing written.
  const fs::path remote = fs::path(options_.remote) / "files/md5" / r1.md5.substr(0, 2) / r1.md5.substr(2);
  fs::permissions(remote, fs::perms::owner_write, fs::perm_options::add);
  write_file_atomically(remote.string(), "tampered too");
  EXPECT_EQ(code_of("HEAD", "models/global.pt").first, ErrorCode::kCorruption);
  EXPECT_FALSE(fs::exists(out));
  // Gone everywhere: not found.
  fs::remove(cached);
  fs::remove(remote);
  EXPECT_EQ(code_of("HEAD", "models/global.pt").first, ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(out));
}

std::string git_status(const std::string& repo) {
  std::string out;
  FILE* p = ::popen(("git -C " + repo + " status --porcelain 2>&1").c_str(), "r");
  char buf[256];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  if (p) ::pclose(p);
  return out;
}

TEST_F(Repo, AFailureMidRoundLeavesThePreviousState) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job-1", "demo", 1, 2, "weights one", {{"eval_accuracy", 0.5}}, {});
  const fs::path root(options_.repo);
  const std::string dvc_before = read_file((root / "models/global.pt.dvc").string());
  const std::string metrics_before = read_file((root / "dvclive/metrics.json").string());
  const std::string curve_before = read_file((root / "dvclive/plots/metrics/eval_accuracy.tsv").string());
  // The model file cannot be replaced: a directory stands in its way. It is
  // written last, after the .dvc, .gitignore, metrics and dvc.yaml files.
  fs::remove(root / "models/global.pt");
  fs::create_directories(root / "models/global.pt/blocker");
  EXPECT_THROW(repo.commit_round("job-1", "demo", 2, 2, "weights two", {{"eval_accuracy", 0.7}}, {}), Error);
  EXPECT_EQ(read_file((root / "models/global.pt.dvc").string()), dvc_before);
  EXPECT_EQ(read_file((root / "dvclive/metrics.json").string()), metrics_before);
  EXPECT_EQ(read_file((root / "dvclive/plots/metrics/eval_accuracy.tsv").string()), curve_before);
  EXPECT_EQ(model_history(options_.repo).size(), 1u);
  const std::string out = (dir_ / "head.pt").string();
  EXPECT_EQ(restore_model(options_.repo, "HEAD", "models/global.pt", out).commit, r1.commit);
  EXPECT_EQ(git_status(options_.repo), "");  // nothing staged, nothing modified

  // The same round again with another model is refused before anything is written.
  fs::remove_all(root / "models/global.pt");
  write_file_atomically((root / "models/global.pt").string(), "weights one");
  try {
    repo.commit_round("job-1", "demo", 1, 2, "other weights", {}, {});
    FAIL();
  } catch (const Error& e) {
    // Not "tag already exists": what is corrupt, both md5s, what to do.
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << what;
    EXPECT_NE(what.find("tag " + r1.tag), std::string::npos) << what;
    EXPECT_NE(what.find(r1.md5), std::string::npos) << what;
    EXPECT_NE(what.find(md5_hex("other weights")), std::string::npos) << what;
    EXPECT_NE(what.find("git tag -d " + r1.tag), std::string::npos) << what;
    EXPECT_EQ(what.find("already exists"), std::string::npos) << what;
  }
  EXPECT_EQ(read_file((root / "models/global.pt").string()), "weights one");
  EXPECT_EQ(git_status(options_.repo), "");

  // The same round with the same model (a resumed job re-running it) reuses
  // its commit and tag: still one commit per round.
  const RoundCommit again = repo.commit_round("job-1", "demo", 1, 2, "weights one", {{"eval_accuracy", 0.5}}, {});
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.commit, r1.commit);
  EXPECT_EQ(again.tag, r1.tag);
  EXPECT_EQ(model_history(options_.repo).size(), 1u);
}

TEST_F(Repo, AnUntaggedRoundCommitAtHeadIsTaggedNotCommittedAgain) {
  ModelRepository repo(options_);
  const RoundCommit first = repo.commit_round("job-3", "demo", 1, 1, "w3", {}, {});
  // As if the process died between the commit and its tag.
  git_repository* raw = nullptr;
  ASSERT_EQ(git_repository_open(&raw, options_.repo.c_str()), 0);
  ASSERT_EQ(git_tag_delete(raw, first.tag.c_str()), 0);
  git_repository_free(raw);
  const RoundCommit again = repo.commit_round("job-3", "demo", 1, 1, "w3", {}, {});
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.commit, first.commit);
  const auto history = model_history(options_.repo);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].tag, first.tag);
}

TEST_F(Repo, AuthorFallsBackWhenGitHasNoIdentity) {
  options_.author = "Site Admin <admin@bank.example>";
  ModelRepository repo(options_);
  const RoundCommit c = repo.commit_round("job-2", "demo", 1, 1, "w", {}, {});
  EXPECT_EQ(c.commit.size(), 40u);
  VersioningOptions bad = options_;
  bad.repo = (dir_ / "other").string();
  bad.author = "no email here";
  ModelRepository other(bad);
  EXPECT_THROW(other.commit_round("job-3", "demo", 1, 1, "w", {}, {}), Error);
}

}  // namespace
}  // namespace fedtrack
