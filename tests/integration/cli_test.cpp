// Drives the real `fedtrack` executable as a user would.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <torch/nn/module.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/parameters.h"
#include "support/run_fedtrack.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

using testing::Outcome;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-cli");
  }
  void TearDown() override { testing::remove_test_dir(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs fedtrack with `args` (already shell-quoted where needed).
  // With `kill_after` > 0 a fedtrack still running then is SIGKILLed (status 137): a hang fails the test.
  Outcome fedtrack(const std::string& args, int kill_after = 0) const {
    const std::string out = path("stdout"), err = path("stderr");
    const std::string limit = kill_after > 0 ? "timeout -s KILL " + std::to_string(kill_after) + " " : "";
    // Its own folder: the job's journal and model repository stay per test.
    return testing::run_fedtrack(FEDTRACK_EXE, dir_.string(), limit, args, out, err);
  }

  fs::path dir_;
};

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

const std::string kSlice =
    " --set rounds=2 --set data.limit_train=6000 --set data.limit_test=1000 --set clients.count=5";

TEST_F(Cli, UnknownKeyExitsTwoWithFileLineAndKey) {
  write_file_atomically(path("bad.yaml"), "rounds: 2\ntrain:\n  lrr: 0.1\n");
  const Outcome o = fedtrack("run " + path("bad.yaml"));
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "fedtrack: " + path("bad.yaml") +
                       ":3: unknown key 'train.lrr' (known in train: epochs, batch_size, lr, "
                       "optimizer, momentum, weight_decay)\n");
  EXPECT_EQ(o.out, "");
}

TEST_F(Cli, WrongTypeExitsTwo) {
  write_file_atomically(path("bad.yaml"), "rounds: many\n");
  const Outcome o = fedtrack("run " + path("bad.yaml"));
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "fedtrack: " + path("bad.yaml") + ":1: rounds: expected an integer, got 'many'\n");
}

TEST_F(Cli, VersionAndHelp) {
  Outcome v = fedtrack("--version");
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("fedtrack 0.", 0), 0u) << v.out;
  Outcome h = fedtrack("run --help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("--set"), std::string::npos);
  EXPECT_NE(h.out.find("--json"), std::string::npos);
}

TEST_F(Cli, JsonReportIsDeterministicAndTheModelLoadsIntoLibTorch) {
  const std::string job = std::string(FEDTRACK_SOURCE_DIR) + "/examples/fashion-mnist-fedavg/job.yaml";
  const Outcome a = fedtrack("run " + job + kSlice + " --json --model-out " + path("a.pt"));
  ASSERT_EQ(a.status, 0) << a.err;
  const Outcome b = fedtrack("run " + job + kSlice + " --json --model-out " + path("b.pt"));
  ASSERT_EQ(b.status, 0) << b.err;

  const auto ja = nlohmann::json::parse(last_line(a.out));
  const auto jb = nlohmann::json::parse(last_line(b.out));
  ASSERT_EQ(ja["rounds"].size(), 2u);
  EXPECT_EQ(ja["rounds"][0]["round"], 1);
  EXPECT_EQ(ja["rounds"][1]["round"], 2);
  EXPECT_TRUE(ja["rounds"][1]["metrics"].contains("eval_accuracy"));
  EXPECT_TRUE(ja.contains("initial"));
  EXPECT_GT(ja["final"]["eval_accuracy"].get<double>(), 0.3);
  EXPECT_EQ(ja["final"], jb["final"]);          // bit-identical metrics and model digest
  EXPECT_NE(ja["job_id"], jb["job_id"]);        // but two distinct jobs
  EXPECT_EQ(read_file(path("a.pt")), read_file(path("b.pt")));
  EXPECT_EQ(sha256_hex(read_file(path("a.pt"))), ja["final"]["model_sha256"].get<std::string>());

  // Progress: one line per round on stderr, nothing but the report on stdout.
  EXPECT_NE(a.err.find("round 1/2"), std::string::npos);
  EXPECT_NE(a.err.find("round 2/2"), std::string::npos);
  EXPECT_EQ(a.out.find("round 1/2"), std::string::npos);

  // A LibTorch user restores it with torch::load.
  auto model = make_model("mlp", ModelInput{{1, 28, 28}, 10});
  auto module = model.ptr();
  torch::load(module, path("a.pt"));
  const Parameters restored = parameters_from_module(*module);
  const Parameters expected = read_checkpoint(path("a.pt"), restored);
  for (std::size_t i = 0; i < restored.size(); ++i) {
    EXPECT_TRUE(torch::equal(restored.tensors[i], expected.tensors[i])) << restored.names[i];
  }
}

// The headline promise: the embedded defaults (10 Dirichlet(0.5) clients,
// FedAvg, MLP, full Fashion-MNIST) reach 0.80 test accuracy.
TEST_F(Cli, DefaultJobReachesEightyPercentAccuracy) {
  const Outcome o = fedtrack("run --json");
  ASSERT_EQ(o.status, 0) << o.err;
  const auto report = nlohmann::json::parse(last_line(o.out));
  EXPECT_GE(report["rounds"].size(), 5u);
  EXPECT_GE(report["final"]["eval_accuracy"].get<double>(), 0.80);
  EXPECT_EQ(report["clients"].size(), 10u);
}

TEST_F(Cli, TlsFilesThatAreFifosAreRefusedNotWaitedOn) {
  // OpenSSL blocking on a FIFO would hang: each run is killed after 60 s, which fails the test.
  ASSERT_EQ(::mkfifo(path("cert.pem").c_str(), 0644), 0);
  write_file_atomically(path("tokens"), "alpha 0123456789abcdef0123\nbravo fedcba9876543210fedc\n");
  write_file_atomically(path("job.yaml"), "clients:\n  count: 2\n");
  write_file_atomically(path("key.pem"), "not a key\n");
  Outcome o = fedtrack("server " + path("job.yaml") + " --tokens " + path("tokens") + " --tls-cert " +
                       path("cert.pem") + " --tls-key " + path("key.pem") + " --listen 127.0.0.1:0", 60);
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_EQ(last_line(o.err), "fedtrack: " + path("cert.pem") + " is not a regular file (a FIFO)");
  o = fedtrack("client --server https://127.0.0.1:9 --token 0123456789abcdef0123 --data " + dir_.string() +
               " --tls-ca " + path("cert.pem") + " --give-up-after 1", 60);
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_EQ(last_line(o.err), "fedtrack client: " + path("cert.pem") + " is not a regular file (a FIFO)");
}

TEST_F(Cli, SigintEndsTheJobAsKilledWithStatus130) {
  const std::string err_path = path("stderr");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (chdir(dir_.c_str()) != 0) _exit(126);
    std::freopen(err_path.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    execl(FEDTRACK_EXE, FEDTRACK_EXE, "run", "--set", "rounds=1000", "--set", "data.limit_train=3000",
          "--set", "data.limit_test=500", "--set", "clients.count=3", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait (bounded) until the first round has been reported, then interrupt.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    usleep(100 * 1000);
    std::ifstream in(err_path);
    std::stringstream s;
    s << in.rdbuf();
    started = s.str().find("round 1/1000") != std::string::npos;
  }
  kill(pid, SIGINT);
  int raw = 0;
  waitpid(pid, &raw, 0);
  ASSERT_TRUE(started);
  ASSERT_TRUE(WIFEXITED(raw));
  EXPECT_EQ(WEXITSTATUS(raw), 130);
  const std::string err = read_file(err_path);
  EXPECT_NE(err.find("job KILLED after"), std::string::npos) << err;
}

}  // namespace
}  // namespace fedtrack
