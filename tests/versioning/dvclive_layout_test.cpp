// The DVCLive-shaped files of a round (dvclive_layout.h) and the artifact
// names (dvc_artifacts.h): the writers alone, then through commit_round on a
// real repository — across a resume, a replayed round and two jobs.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dvclive_layout.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/dvc_artifacts.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/model_repository.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

// The steps of a .tsv's rows, in file order.
std::vector<int> steps_of(const std::string& tsv) {
  std::vector<int> out;
  std::size_t start = tsv.find('\n') + 1;
  while (start < tsv.size()) {
    const std::size_t end = tsv.find('\n', start);
    const std::string line = tsv.substr(start, end - start);
    const auto a = line.find('\t');
    out.push_back(std::stoi(line.substr(a + 1, line.find('\t', a + 1) - a - 1)));
    start = end + 1;
  }
  return out;
}

TEST(DvcliveLayout, MetricsJsonHoldsTheLatestValuesAndTheStep) {
  const auto m = nlohmann::json::parse(
      dvclive_metrics_json({{"eval_accuracy", 0.8085}, {"eval_loss", std::nan("")}, {"clients_ok", 4}}, 3));
  EXPECT_EQ(m, nlohmann::json::parse(R"({"clients_ok": 4.0, "eval_accuracy": 0.8085, "step": 3})"));
}

TEST(DvcliveLayout, ParamsAreTypedFlatAndWithoutSecrets) {
  const std::string text = dvclive_params_yaml({{"train.lr", "0.01"},
                                                {"rounds", "5"},
                                                {"evaluation.initial", "true"},
                                                {"name", "demo: a job"},
                                                {"data.limit_train", "007"},
                                                {"tracking.uri", "http://alice:s3cret@127.0.0.1:5000/?token=t0ken"},
                                                {"train.lr", "9"}});  // a second value of a key: the first wins
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
  EXPECT_EQ(text.find("t0ken"), std::string::npos) << text;
  const YAML::Node y = YAML::Load(text);
  EXPECT_EQ(y.size(), 6u);
  EXPECT_EQ(y["train.lr"].as<double>(), 0.01);
  EXPECT_EQ(y["rounds"].as<int>(), 5);
  EXPECT_TRUE(y["evaluation.initial"].as<bool>());
  EXPECT_EQ(y["name"].as<std::string>(), "demo: a job");
  EXPECT_EQ(y["data.limit_train"].as<std::string>(), "007");  // not YAML 1.2's number 7
  EXPECT_EQ(text.find("train.lr: 0.01\nrounds: 5\n"), 0u) << text;
}

TEST(DvcliveLayout, TsvRowsAreRebuiltFromThePreviousRoundExactlyOnce) {
  const std::string header = "timestamp\tstep\teval_accuracy\n";
  const std::string one = dvclive_tsv_with_row(std::nullopt, "eval_accuracy", 1, 0.5, 1000);
  EXPECT_EQ(one, header + "1000\t1\t0.5\n");
  const std::string two = dvclive_tsv_with_row(one, "eval_accuracy", 2, 0.625, 2000);
  EXPECT_EQ(two, header + "1000\t1\t0.5\n2000\t2\t0.625\n");
  // Round 2 again (a replay that had already written its row): still one row per step.
  EXPECT_EQ(steps_of(dvclive_tsv_with_row(two, "eval_accuracy", 2, 0.625, 3000)), (std::vector<int>{1, 2}));
  // Rows past this step (a file from a later round) and malformed rows go.
  EXPECT_EQ(steps_of(dvclive_tsv_with_row(two + "x\ty\n\n4000\t9\t1\n", "eval_accuracy", 3, 0.7, 5000)),
            (std::vector<int>{1, 2, 3}));
  // Another metric's file under this name is not continued.
  EXPECT_EQ(dvclive_tsv_with_row("timestamp\tstep\tother\n1\t1\t1\n", "eval_accuracy", 2, 0.5, 7),
            header + "7\t2\t0.5\n");
}

TEST(DvcliveLayout, MetricNamesStayInsideThePlotsFolder) {
  EXPECT_EQ(metric_file_stem("eval_accuracy"), "eval_accuracy");
  EXPECT_EQ(metric_file_stem("../../etc/passwd"), "_.._.._etc_passwd");
  EXPECT_EQ(metric_file_stem(".hidden"), "_.hidden");
  EXPECT_EQ(metric_file_stem("a\tb\nc"), "a_b_c");
  EXPECT_EQ(metric_file_stem(std::string(500, 'x')).size(), 120u);
}

TEST(DvcliveLayout, DvcYamlIsWhatDvcliveWrites) {
  EXPECT_EQ(dvc_yaml_text({true, true, {{"fashion-mlp", "models/global.pt"}, {"fashion-mlp-onnx", "models/global.onnx"}}}),
            "params:\n- dvclive/params.yaml\n"
            "metrics:\n- dvclive/metrics.json\n"
            "plots:\n- dvclive/plots/metrics:\n    x: step\n"
            "artifacts:\n"
            "  fashion-mlp:\n    path: models/global.pt\n    type: model\n"
            "  fashion-mlp-onnx:\n    path: models/global.onnx\n    type: model\n");
  // No params, no curves: no such sections (DVC would look for the files).
  EXPECT_EQ(dvc_yaml_text({false, false, {{"m", "a b.pt"}}}),
            "metrics:\n- dvclive/metrics.json\nartifacts:\n  m:\n    path: \"a b.pt\"\n    type: model\n");
}

TEST(DvcArtifacts, NamesFollowDvcsRule) {
  for (const std::string ok : {"fashion-mlp", "Model_2", "a", "x1-y_z"}) EXPECT_TRUE(is_dvc_artifact_name(ok)) << ok;
  for (const std::string& bad : std::vector<std::string>{"", "-a", "a-", "a b", "fedtrack/x", "a.b", "é", std::string(101, 'a')}) {
    EXPECT_FALSE(is_dvc_artifact_name(bad)) << bad;
    EXPECT_THROW(check_gto_name(bad), Error) << bad;
  }
  EXPECT_EQ(artifact_name_for_job("fashion-mnist-fedavg"), "fashion-mnist-fedavg");
  EXPECT_EQ(artifact_name_for_job("Loans v2 (EU)"), "Loans-v2-EU");
  EXPECT_EQ(artifact_name_for_job("--x..y--"), "x-y");
  EXPECT_EQ(artifact_name_for_job("ü"), "model");
}

class DvcliveRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-dvclive");
    options_.repo = (dir_ / "models-repo").string();
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  }
  void TearDown() override { testing::remove_test_dir(dir_); }
  std::string file(const std::string& rel) const { return read_file((fs::path(options_.repo) / rel).string()); }
  bool has(const std::string& rel) const { return fs::exists(fs::path(options_.repo) / rel); }
  std::string sh(const std::string& cmd) const {
    std::string out;
    FILE* p = ::popen(("cd " + options_.repo + " && " + cmd + " 2>&1").c_str(), "r");
    char buf[4096];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    return out;
  }
  fs::path dir_;
  VersioningOptions options_;
};

TEST_F(DvcliveRepo, CurvesHaveOneRowPerRoundAcrossAResumeAReplayAndTwoJobs) {
  options_.params = {{"train.lr", "0.01"}, {"tracking.uri", "http://alice:s3cret@127.0.0.1:5000"}};
  {
    ModelRepository repo(options_);
    repo.commit_round("job-a", "demo", 1, 3, "a1", {{"eval_accuracy", 0.5}, {"dp_epsilon", 1.5}}, {});
    repo.commit_round("job-a", "demo", 2, 3, "a2", {{"eval_accuracy", 0.6}, {"dp_epsilon", std::nan("")}}, {});
    // Round 2 replayed by a resume that stopped after its commit: reused, nothing rewritten.
    const std::string before = file("dvclive/plots/metrics/eval_accuracy.tsv");
    EXPECT_TRUE(repo.commit_round("job-a", "demo", 2, 3, "a2", {{"eval_accuracy", 0.6}}, {}).reused);
    EXPECT_EQ(file("dvclive/plots/metrics/eval_accuracy.tsv"), before);
  }
  // Another job commits in between; its curves start at its own round 1.
  VersioningOptions other = options_;
  other.params = {{"train.lr", "0.1"}};
  ModelRepository(other).commit_round("job-b", "other", 1, 1, "b1", {{"eval_accuracy", 0.3}}, {});
  EXPECT_EQ(steps_of(file("dvclive/plots/metrics/eval_accuracy.tsv")), (std::vector<int>{1}));
  EXPECT_FALSE(has("dvclive/plots/metrics/dp_epsilon.tsv"));  // job-a's curve is not job-b's
  EXPECT_EQ(YAML::Load(file("dvclive/params.yaml"))["train.lr"].as<double>(), 0.1);
  EXPECT_NE(file("dvc.yaml").find("  other:\n    path: models/global.pt\n"), std::string::npos);

  // job-a resumes in a new process: round 3 continues job-a's curves, not HEAD's.
  ModelRepository resumed(options_);
  const RoundCommit r3 = resumed.commit_round("job-a", "demo", 3, 3, "a3", {{"eval_accuracy", 0.7}}, {});
  EXPECT_EQ(steps_of(file("dvclive/plots/metrics/eval_accuracy.tsv")), (std::vector<int>{1, 2, 3}));
  // dp_epsilon was reported in round 1 only: its curve stays as it was.
  EXPECT_EQ(steps_of(file("dvclive/plots/metrics/dp_epsilon.tsv")), (std::vector<int>{1}));
  EXPECT_EQ(nlohmann::json::parse(file("dvclive/metrics.json")),
            nlohmann::json::parse(R"({"eval_accuracy": 0.7, "step": 3})"));
  EXPECT_EQ(file("dvc.yaml"),
            "params:\n- dvclive/params.yaml\nmetrics:\n- dvclive/metrics.json\n"
            "plots:\n- dvclive/plots/metrics:\n    x: step\n"
            "artifacts:\n  demo:\n    path: models/global.pt\n    type: model\n");
  // Committed, not only written; history reads the metrics back.
  EXPECT_EQ(sh("git status --porcelain"), "");
  EXPECT_EQ(sh("git show " + r3.tag + ":dvclive/plots/metrics/eval_accuracy.tsv"),
            file("dvclive/plots/metrics/eval_accuracy.tsv"));
  for (const auto& e : model_history(options_.repo)) {
    if (e.tag == r3.tag) {
      EXPECT_EQ(e.metrics, (Metrics{{"eval_accuracy", 0.7}}));
    }
  }
  // The password in a param never reaches the repository: no file, no commit.
  EXPECT_EQ(sh("grep -rl s3cret . ; git log --all -p | grep -c s3cret"), "0\n");
  EXPECT_EQ(declared_artifact(options_.repo, r3.tag, "models/global.pt").value_or(""), "demo");
  EXPECT_EQ(declared_artifact(options_.repo, "fedtrack/job-b/round-001", "models/global.pt").value_or(""), "other");
}

// versioning.artifact names the model whatever the job is called; a bad one
// is refused before anything is written.
TEST_F(DvcliveRepo, TheArtifactNameIsTheOptionElseTheJobs) {
  options_.artifact = "fashion-mlp";
  ModelRepository repo(options_);
  const RoundCommit r = repo.commit_round("job-1", "Some job!", 1, 1, "w", {}, {}, {{"models/global.int8.onnx", "o"}});
  EXPECT_EQ(declared_artifact(options_.repo, r.commit, "models/global.pt").value_or(""), "fashion-mlp");
  EXPECT_EQ(declared_artifact(options_.repo, r.commit, "models/global.int8.onnx").value_or(""), "fashion-mlp-int8-onnx");
  EXPECT_EQ(declared_artifact(options_.repo, r.commit, "models/other.pt"), std::nullopt);
  VersioningOptions bad = options_;
  bad.repo = (dir_ / "never").string();
  bad.artifact = "fedtrack/x";
  EXPECT_THROW(ModelRepository{bad}, Error);
  EXPECT_FALSE(fs::exists(bad.repo));
}

// A repository written before DVCLive's layout: dvc.yaml names the model
// `global` and the metrics sit beside it. Its revisions still answer with
// their own artifact name, history still reads their metrics, and the next
// round moves the repository to the new layout (the old metrics file leaves).
TEST_F(DvcliveRepo, AnOldRepositoryKeepsItsNamesAndMovesOn) {
  fs::create_directories(fs::path(options_.repo) / "models");
  sh("git init -q . && mkdir -p .dvc && : > .dvc/config");
  std::ofstream(fs::path(options_.repo) / "dvc.yaml")
      << "metrics:\n- models/global.metrics.json\nartifacts:\n  global:\n    path: models/global.pt\n    type: model\n";
  std::ofstream(fs::path(options_.repo) / "models/global.metrics.json") << "{\"round\": 1, \"eval_accuracy\": 0.4}\n";
  std::ofstream(fs::path(options_.repo) / "models/global.pt.dvc")
      << "outs:\n- md5: 0cc175b9c0f1b6a831c399e269772661\n  size: 1\n  hash: md5\n  path: global.pt\n";
  sh("git add -A && git -c user.name=t -c user.email=t@t commit -q -m 'demo round 1/1\n\nfedtrack-job: old\n"
     "fedtrack-round: 1\nfedtrack-md5: 0cc175b9c0f1b6a831c399e269772661\nfedtrack-path: models/global.pt' && "
     "git -c user.name=t -c user.email=t@t tag -a -m r fedtrack/old/round-001");
  EXPECT_EQ(declared_artifact(options_.repo, "HEAD", "models/global.pt").value_or(""), "global");
  ASSERT_EQ(model_history(options_.repo).size(), 1u);
  EXPECT_EQ(model_history(options_.repo)[0].metrics, (Metrics{{"eval_accuracy", 0.4}}));

  ModelRepository repo(options_);
  const RoundCommit r = repo.commit_round("new", "demo", 1, 1, "w", {{"eval_accuracy", 0.9}}, {});
  EXPECT_FALSE(has("models/global.metrics.json"));
  EXPECT_EQ(sh("git ls-files models"), "models/.gitignore\nmodels/global.pt.dvc\n");
  EXPECT_EQ(declared_artifact(options_.repo, r.tag, "models/global.pt").value_or(""), "demo");
  EXPECT_EQ(declared_artifact(options_.repo, "fedtrack/old/round-001", "models/global.pt").value_or(""), "global");
  EXPECT_THROW(declared_artifact(options_.repo, "no-such-rev", "models/global.pt"), Error);
}

}  // namespace
}  // namespace fedtrack
