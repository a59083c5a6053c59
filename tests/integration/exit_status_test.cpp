// The CLI's error edge, through the real `fedtrack` executable: every exit
// status of README.md's table ("Exit statuses") at least once, one
// `fedtrack: ...` line per failure, nothing left behind by a job that fails
// before it starts, and the model repository found from inside it.
//
// Status 1 (internal error) cannot be provoked honestly from outside: every
// failure a user can cause is a fedtrack::Error with its own code. The
// executable's test seam FEDTRACK_TEST_THROW=std|unknown (exit_status.h)
// throws a std::runtime_error or an int inside the command, which is what a
// library's stray exception looks like to the error edge.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "fedtrack/core/files.h"
#include "support/run_fedtrack.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

using testing::Outcome;

// A one-round job small enough to take a few seconds.
const std::string kTiny =
    " --set rounds=1 --set data.limit_train=600 --set data.limit_test=100 --set clients.count=2";

// The README's command list, in its order.
const std::string kCommands = "run, server, client, partition, runs, sync, restore, history, promote, export";

int lines_in(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class ExitStatus : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_test_dir("fedtrack-exit"); }
  void TearDown() override { testing::remove_test_dir(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs `env ENV fedtrack ARGS` in `cwd` (default: the test's folder),
  // journal-only (no MLflow variables); stdout and stderr go outside `cwd`'s
  // tree so that a check for debris sees only what fedtrack wrote.
  Outcome fedtrack(const std::string& args, const std::string& env = "", const std::string& cwd = "") const {
    const std::string out = io_ + "/stdout", err = io_ + "/stderr";
    return testing::run_fedtrack(FEDTRACK_EXE, cwd.empty() ? path("work") : cwd,
                                 "env -u MLFLOW_TRACKING_URI -u MLFLOW_EXPERIMENT_NAME " + env, args, out, err);
  }

  // Every entry under `root`, relative.
  static std::set<std::string> tree(const fs::path& root) {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) out.insert(fs::relative(e.path(), root).string());
    return out;
  }

  void make_work() {
    fs::create_directories(path("work"));
    fs::create_directories(path("io"));
    io_ = path("io");
  }

  fs::path dir_;
  std::string io_;
};

TEST_F(ExitStatus, ZeroAndHistoryAndRestoreFromInsideTheModelRepository) {
  make_work();
  const Outcome job = fedtrack("run --json" + kTiny);
  ASSERT_EQ(job.status, 0) << job.err;
  std::string last = job.out.substr(0, job.out.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  const auto report = nlohmann::json::parse(last);
  const std::string tag = report["versioning"]["rounds"][0]["tag"];

  // From a folder inside the repository, as git finds its repository.
  const std::string inside = path("work/fedtrack-models/models");
  ASSERT_TRUE(fs::is_directory(inside));
  const Outcome history = fedtrack("history --json", "", inside);
  ASSERT_EQ(history.status, 0) << history.err;
  const auto rounds = nlohmann::json::parse(history.out)["rounds"];
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0]["tag"], tag);

  const Outcome restored = fedtrack("restore --rev " + tag + " --out " + path("io/round-1.pt"), "", inside);
  ASSERT_EQ(restored.status, 0) << restored.err;
  EXPECT_TRUE(fs::exists(path("io/round-1.pt")));

  // 3 for an unknown revision, naming it (in the repository found around the cwd).
  const Outcome unknown = fedtrack("restore --rev no-such-rev --out " + path("io/x.pt"), "", inside);
  EXPECT_EQ(unknown.status, 3);
  EXPECT_NE(unknown.err.find("no-such-rev"), std::string::npos) << unknown.err;
  EXPECT_EQ(lines_in(unknown.err), 1) << unknown.err;
  EXPECT_FALSE(fs::exists(path("io/x.pt")));

  // Outside any repository: the versioning.repo default, relative to the cwd.
  const Outcome from_work = fedtrack("history --json");
  ASSERT_EQ(from_work.status, 0) << from_work.err;
  EXPECT_EQ(nlohmann::json::parse(from_work.out)["rounds"].size(), 1u);

  // A job that fails before it starts leaves what was there as it was.
  const std::string journal = read_file(path("work/.fedtrack/journal.sqlite"));
  const auto before = tree(path("work"));
  const Outcome bad = fedtrack("run --set data.path=/nonexistent" + kTiny);
  EXPECT_EQ(bad.status, 3);
  EXPECT_EQ(tree(path("work")), before);
  EXPECT_EQ(read_file(path("work/.fedtrack/journal.sqlite")), journal);

  // 4 unavailable: the journal's writes cannot reach MLflow (nothing listens on port 1).
  const Outcome sync = fedtrack("sync --tracking-uri http://127.0.0.1:1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES=0");
  EXPECT_EQ(sync.status, 4) << sync.err;
  EXPECT_NE(sync.err.find("fedtrack: "), std::string::npos) << sync.err;
}

TEST_F(ExitStatus, OneForAnyOtherExceptionWithItsMessageNeverATerminate) {
  make_work();
  const Outcome std_error = fedtrack("runs", "FEDTRACK_TEST_THROW=std");
  EXPECT_EQ(std_error.status, 1);
  EXPECT_EQ(std_error.err, "fedtrack: internal error: FEDTRACK_TEST_THROW: a std::runtime_error from inside the command\n");
  const Outcome unknown = fedtrack("history", "FEDTRACK_TEST_THROW=unknown");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_EQ(unknown.err, "fedtrack: internal error: an unknown exception\n");
}

// std::filesystem::exists throws for a name longer than NAME_MAX: that
// used to end in std::terminate (SIGABRT).
TEST_F(ExitStatus, AFilesystemErrorIsOneLineAndAStatusNeverATerminate) {
  make_work();
  const Outcome o = fedtrack("runs --journal " + std::string(300, 'j'));
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "fedtrack: --journal " + std::string(300, 'j') + ": File name too long\n");
}

TEST_F(ExitStatus, TwoForAnUnknownCommandWhichListsTheCommands) {
  make_work();
  const Outcome typo = fedtrack("rnu");
  EXPECT_EQ(typo.status, 2);
  EXPECT_EQ(typo.err, "fedtrack: unknown command 'rnu'; commands: " + kCommands + "\n");
  const Outcome none = fedtrack("");
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(none.err, "fedtrack: a command is required; commands: " + kCommands + "\n");
  const Outcome usage = fedtrack("restore --rev HEAD");  // --out is required
  EXPECT_EQ(usage.status, 2);
  EXPECT_EQ(lines_in(usage.err), 1) << usage.err;
  EXPECT_EQ(usage.err.rfind("fedtrack: ", 0), 0u) << usage.err;
}

TEST_F(ExitStatus, ThreeForAMissingJobFileAndAnUnknownStrategyModelOrDataset) {
  make_work();
  const Outcome missing = fedtrack("run no-such-job.yaml");
  EXPECT_EQ(missing.status, 3);
  EXPECT_EQ(missing.err, "fedtrack: no-such-job.yaml: cannot read job file\n");
  const Outcome strategy = fedtrack("run --set strategy.name=fedsgd");
  EXPECT_EQ(strategy.status, 3);
  EXPECT_EQ(strategy.err.rfind("fedtrack: --set: strategy.name: must be one of ", 0), 0u) << strategy.err;
  const Outcome dataset = fedtrack("run --set data.dataset=cifar");
  EXPECT_EQ(dataset.status, 3);
  EXPECT_EQ(lines_in(dataset.err), 1) << dataset.err;
  EXPECT_TRUE(tree(path("work")).empty());
}

TEST_F(ExitStatus, AJobThatFailsBeforeRoundOneLeavesNothingBehind) {
  make_work();
  const Outcome data = fedtrack("run --set data.path=/nonexistent" + kTiny);
  EXPECT_EQ(data.status, 3) << data.err;
  EXPECT_NE(data.err.find("fedtrack: data.dataset: fashion-mnist: no folder /nonexistent"), std::string::npos)
      << data.err;
  EXPECT_EQ(tree(path("work")), std::set<std::string>{}) << data.err;
  const Outcome model = fedtrack("run --set model=nosuch" + kTiny);
  EXPECT_EQ(model.status, 3) << model.err;
  EXPECT_NE(model.err.find("unknown model 'nosuch'"), std::string::npos) << model.err;
  EXPECT_EQ(tree(path("work")), std::set<std::string>{}) << model.err;
}

TEST_F(ExitStatus, FiveForAJournalThatIsNotOne) {
  make_work();
  write_file_atomically(path("work/journal.sqlite"), "not a database, not at all: just some bytes\n");
  const Outcome o = fedtrack("runs --journal journal.sqlite");
  EXPECT_EQ(o.status, 5);
  EXPECT_EQ(lines_in(o.err), 1) << o.err;
}

TEST_F(ExitStatus, SevenWhenEveryClientDivergesToNaN) {
  make_work();
  const Outcome o = fedtrack("run --set train.lr=1e30" + kTiny);
  EXPECT_EQ(o.status, 7) << o.err;
  EXPECT_NE(o.err.find("training diverged"), std::string::npos) << o.err;
}

// 6: a client whose token the server refuses; 130: the server stopped by SIGINT.
TEST_F(ExitStatus, SixForARefusedTokenAnd130ForSigint) {
  make_work();
  write_file_atomically(path("work/tokens.txt"), "alpha token-alpha-1\nbeta token-beta-22\n");
  const std::string err_path = path("io/server.err");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (chdir(path("work").c_str()) != 0) _exit(126);
    std::freopen(err_path.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    unsetenv("MLFLOW_TRACKING_URI");
    execl(FEDTRACK_EXE, FEDTRACK_EXE, "server", "--listen", "127.0.0.1:0", "--tokens", "tokens.txt", "--set",
          "rounds=1", "--set", "data.limit_train=600", "--set", "data.limit_test=100", "--set", "clients.count=2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait (bounded) for the server to say where it listens.
  std::string port;
  for (int i = 0; i < 1200 && port.empty(); ++i) {
    usleep(100 * 1000);
    std::smatch m;
    const std::string text = fs::exists(err_path) ? read_file(err_path) : "";
    if (std::regex_search(text, m, std::regex(R"(serving job \S+ on http://127\.0\.0\.1:(\d+))"))) port = m[1];
  }
  Outcome client;
  if (!port.empty()) {
    client = fedtrack("client --server http://127.0.0.1:" + port + " --token wrong-token-1 --data shard");
  }
  kill(pid, SIGINT);
  int raw = 0;
  waitpid(pid, &raw, 0);
  ASSERT_FALSE(port.empty()) << read_file(err_path);
  EXPECT_EQ(client.status, 6) << client.err;
  EXPECT_NE(client.err.find("refused the token"), std::string::npos) << client.err;
  ASSERT_TRUE(WIFEXITED(raw));
  EXPECT_EQ(WEXITSTATUS(raw), 130) << read_file(err_path);
}

}  // namespace
}  // namespace fedtrack
