// What a killed fedtrack process leaves in a model repository, and what a
// live one holds: the next writer cleans up after the dead and never breaks
// a live lock. Writers are real child processes (fork); "killed" is SIGKILL.
#include <gtest/gtest.h>
#include <git2.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

std::string git_status(const fs::path& repo) {
  std::string out;
  FILE* p = ::popen(("git -C " + repo.string() + " status --porcelain 2>&1").c_str(), "r");
  char buf[256];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  if (p) ::pclose(p);
  return out;
}

void touch(const fs::path& file) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "left behind";
}

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Takes <git>/fedtrack.lock the way a fedtrack writer does (flock + owner
// record); returns the descriptor.
int hold_lock(const fs::path& git_dir) {
  const int fd = ::open((git_dir / "fedtrack.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(90);
  const std::string record = "pid " + std::to_string(::getpid()) + "\nhost test\nsince 2026-12-01T00:00:00Z\nsince_ns " +
                             std::to_string(now_ns()) + "\n";
  if (::pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size())) ::_exit(91);
  return fd;
}

// A child process that runs `body`, then waits to be killed; SIGKILLed and
// reaped when this goes out of scope (also when a test fails early).
class LiveChild {
 public:
  template <typename Body>
  explicit LiveChild(Body body) {
    int ready[2];
    if (::pipe(ready) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      body();
      if (::write(ready[1], "x", 1) != 1) ::_exit(92);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c;
    EXPECT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
  }
  ~LiveChild() { kill(); }
  LiveChild(const LiveChild&) = delete;
  LiveChild& operator=(const LiveChild&) = delete;
  pid_t pid() const { return pid_; }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

class Recovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-recovery");
    options_.repo = (dir_ / "models-repo").string();
    options_.log = [this](const std::string& line) { log_ += line + "\n"; };
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  }
  void TearDown() override { testing::remove_test_dir(dir_); }
  fs::path repo() const { return options_.repo; }
  fs::path git() const { return repo() / ".git"; }

  fs::path dir_;
  VersioningOptions options_;
  std::string log_;
};

TEST_F(Recovery, WhatAKilledWriterLeftIsRemovedAndTheRoundIsCommitted) {
  ModelRepository first(options_);
  const RoundCommit r1 = first.commit_round("job-1", "demo", 1, 2, "weights one", {}, {});
  const std::string object = r1.md5.substr(0, 2);
  // A writer dies in round 2 holding the repository lock and git's locks,
  // with temporaries half written.
  const std::vector<fs::path> debris = {
      git() / "index.lock", git() / "HEAD.lock", git() / "config.lock", git() / "refs/heads/master.lock",
      git() / "refs/tags/fedtrack/job-1/round-002.lock", git() / "objects/tmp_object_git2_a1b2c3",
      repo() / "_git2_d4e5f6"};
  LiveChild writer([&] {
    hold_lock(git());
    for (const auto& f : debris) touch(f);
    const std::string pid = std::to_string(::getpid());
    touch(repo() / ("models/global.pt.dvc.tmp-" + pid + "-0"));
    touch(repo() / (".dvc/cache/files/md5/" + object + "/ffff.tmp-" + pid + "-3"));
    touch(repo() / ("dvc.yaml.tmp-" + pid + "-7"));
  });
  const pid_t dead = writer.pid();
  writer.kill();
  ASSERT_TRUE(fs::exists(git() / "index.lock"));
  ASSERT_NE(git_status(repo()), "");

  ModelRepository again(options_);
  const RoundCommit r2 = again.commit_round("job-1", "demo", 2, 2, "weights two", {}, {});
  EXPECT_FALSE(r2.reused);
  for (const auto& f : debris) EXPECT_FALSE(fs::exists(f)) << f;
  for (auto it = fs::recursive_directory_iterator(repo()); it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << it->path();
    EXPECT_FALSE(name.size() > 5 && name.substr(name.size() - 5) == ".lock") << it->path();
  }
  EXPECT_EQ(git_status(repo()), "");
  EXPECT_EQ(model_history(options_.repo).size(), 2u);
  EXPECT_NE(log_.find("killed fedtrack process"), std::string::npos) << log_;
  EXPECT_NE(log_.find("pid " + std::to_string(dead)), std::string::npos) << log_;
  EXPECT_NE(log_.find(".git/index.lock"), std::string::npos) << log_;
}

TEST_F(Recovery, ALiveWritersLockIsWaitedForThenReportedNeverBroken) {
  { ModelRepository create(options_); }
  options_.lock_wait_seconds = 0.3;
  LiveChild holder([&] { hold_lock(git()); });
  const pid_t live = holder.pid();
  const std::string expected = "repository busy (pid " + std::to_string(live) + ")";
  try {
    ModelRepository busy(options_);
    FAIL() << "opened a repository another live process holds";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((git() / "fedtrack.lock").string()), std::string::npos) << e.what();
  }
  EXPECT_NE(read_file((git() / "fedtrack.lock").string()).find("pid " + std::to_string(live)), std::string::npos);
  holder.kill();
  // Its owner is dead now: the lock is stale and taken over.
  ModelRepository after(options_);
  EXPECT_EQ(after.commit_round("job-1", "demo", 1, 1, "w", {}, {}).round, 1);
  EXPECT_FALSE(fs::exists(git() / "fedtrack.lock"));
}

TEST_F(Recovery, AGitLockNotLeftByFedtrackIsReportedNotRemoved) {
  ModelRepository repository(options_);
  repository.commit_round("job-1", "demo", 1, 3, "w1", {}, {});
  // Held open by a live process (a git command at work): busy, with its pid.
  LiveChild git_command([&] {
    const int fd = ::open((git() / "index.lock").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) ::_exit(93);
  });
  const pid_t git_process = git_command.pid();
  try {
    repository.commit_round("job-1", "demo", 2, 3, "w2", {}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("index.lock"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(git_process)), std::string::npos) << e.what();
  }
  git_command.kill();
  // Nobody holds it now, but no fedtrack process died holding the
  // repository: it is not fedtrack's to remove.
  try {
    repository.commit_round("job-1", "demo", 2, 3, "w2", {}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << e.what();
    EXPECT_NE(std::string(e.what()).find((git() / "index.lock").string() + " exists"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(git() / "index.lock"));
  fs::remove(git() / "index.lock");
  EXPECT_EQ(repository.commit_round("job-1", "demo", 2, 3, "w2", {}, {}).round, 2);
}

TEST_F(Recovery, ARepositoryKilledDuringCreationIsFinished) {
  // Killed inside `git init` (config.lock taken, no HEAD yet), holding the lock.
  fs::create_directories(git());
  LiveChild init([&] {
    hold_lock(git());
    touch(git() / "description");
    touch(git() / "config.lock");
  });
  init.kill();
  ModelRepository repository(options_);
  EXPECT_TRUE(fs::exists(git() / "HEAD"));
  EXPECT_FALSE(fs::exists(git() / "config.lock"));
  for (const char* f : {".dvc/config", ".dvc/.gitignore", ".dvcignore"}) EXPECT_TRUE(fs::exists(repo() / f)) << f;

  // Killed after .dvc/.gitignore, before .dvc/config (the last file made).
  const fs::path other = dir_ / "other-repo";
  fs::create_directories(other / ".dvc");
  write_file_atomically((other / ".dvc" / ".gitignore").string(), "/config.local\n/tmp\n/cache\n");
  VersioningOptions o = options_;
  o.repo = other.string();
  ModelRepository finished(o);
  EXPECT_TRUE(fs::exists(other / ".dvc" / "config"));
  EXPECT_TRUE(fs::exists(other / ".dvcignore"));
  finished.commit_round("job-2", "demo", 1, 1, "w", {}, {});
  EXPECT_EQ(git_status(other), "");
}

TEST_F(Recovery, TwoWritersIntoOneRepositoryTakeTurns) {
  { ModelRepository create(options_); }
  std::vector<pid_t> writers;
  for (const std::string job : {"job-a", "job-b"}) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        ModelRepository mine(options_);
        for (int round = 1; round <= 20; ++round) {
          mine.commit_round(job, "demo", round, 20, job + " weights " + std::to_string(round), {}, {});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", job.c_str(), e.what());
        ::_exit(1);
      }
      ::_exit(0);
    }
    writers.push_back(pid);
  }
  for (const pid_t pid : writers) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer " << pid << " status " << status;
  }
  const auto history = model_history(options_.repo);
  EXPECT_EQ(history.size(), 40u);
  FILE* p = ::popen(("git -C " + options_.repo + " rev-list --count HEAD").c_str(), "r");
  char buf[32] = {};
  ASSERT_TRUE(p && std::fgets(buf, sizeof buf, p));
  ::pclose(p);
  EXPECT_EQ(std::atoi(buf), 40);
  EXPECT_EQ(git_status(repo()), "");
  for (const auto& e : history) {
    const RestoreResult r = restore_model(options_.repo, e.tag, "models/global.pt", (dir_ / "out.pt").string());
    EXPECT_EQ(read_file((dir_ / "out.pt").string()), e.job_id + " weights " + std::to_string(e.round));
    EXPECT_EQ(r.md5, e.md5);
  }
}

TEST_F(Recovery, ADirectoryOrFifoAtACacheObjectIsCorruptionNotACrashOrHang) {
  ::alarm(60);  // a hang fails the test instead of the suite's timeout
  options_.remote = (dir_ / "remote").string();
  ModelRepository repository(options_);
  const RoundCommit r1 = repository.commit_round("job-1", "demo", 1, 2, "weights one", {}, {});
  auto object_in = [&](const fs::path& root) { return root / "files/md5" / r1.md5.substr(0, 2) / r1.md5.substr(2); };
  const fs::path cached = object_in(repo() / ".dvc/cache"), remote = object_in(options_.remote);
  const std::string out = (dir_ / "out.pt").string();

  // A directory in the cache: the remote copy is used.
  fs::remove(cached);
  fs::create_directories(cached / "inside");
  EXPECT_EQ(restore_model(options_.repo, "HEAD", "models/global.pt", out).source, "remote");
  // And a FIFO in the remote: no copy left, corruption naming both.
  fs::remove(remote);
  ASSERT_EQ(::mkfifo(remote.c_str(), 0644), 0);
  try {
    restore_model(options_.repo, "HEAD", "models/global.pt", out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    EXPECT_NE(std::string(e.what()).find(cached.string() + " is not a regular file (a directory)"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(remote.string() + " is not a regular file (a FIFO)"), std::string::npos)
        << e.what();
  }
  // Committing that model again: the object path is in the way.
  try {
    repository.commit_round("job-2", "demo", 1, 1, "weights one", {}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    EXPECT_NE(std::string(e.what()).find(cached.string()), std::string::npos) << e.what();
  }
  // A cache object that rotted is rewritten by the next commit of that model.
  fs::remove_all(cached);
  fs::remove(remote);
  touch(cached);
  repository.commit_round("job-3", "demo", 1, 1, "weights one", {}, {});
  EXPECT_EQ(md5_file(cached.string()).md5, r1.md5);
  ::alarm(0);
}

}  // namespace
}  // namespace fedtrack
