// The MLflow client against a real `mlflow server`, started by
// tests/integration/mlflow_server.py, which passes FEDTRACK_TEST_MLFLOW_URI.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "fedtrack/core/error.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {
namespace {

class MlflowLive : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* uri = std::getenv("FEDTRACK_TEST_MLFLOW_URI");
    ASSERT_NE(uri, nullptr) << "run through tests/integration/mlflow_server.py, which starts the server";
    MlflowConfig config = MlflowConfig::from_environment(uri);
    client_ = std::make_unique<MlflowClient>(config);
    experiment_ = client_->get_or_create_experiment(
        std::string("live-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  RunInfo new_run(const std::string& name) { return client_->create_run(experiment_, name, 1700000000000, {}); }

  std::unique_ptr<MlflowClient> client_;
  std::string experiment_;
};

TEST_F(MlflowLive, ExperimentsAreGotOrCreatedOnce) {
  EXPECT_EQ(client_->get_or_create_experiment("live-ExperimentsAreGotOrCreatedOnce"), experiment_);
  EXPECT_FALSE(client_->get_experiment_by_name("live-no-such-experiment").has_value());
}

TEST_F(MlflowLive, BatchesOverTheServerLimitsAllLand) {
  const RunInfo run = new_run("over-limits");
  LogBatch batch;
  for (int i = 0; i < 250; ++i) batch.params.push_back({"param." + std::to_string(i), std::to_string(i)});
  for (int i = 0; i < 130; ++i) batch.tags.push_back({"tag." + std::to_string(i), "t"});
  for (int i = 0; i < 2500; ++i) batch.metrics.push_back({"curve", i * 0.5, 1700000000000 + i, i});
  const auto before = client_->requests_sent();
  client_->log_batch(run.run_id, batch);
  EXPECT_EQ(client_->requests_sent() - before, static_cast<std::int64_t>(split_log_batch(batch).size()));
  const MlflowRun got = client_->get_run(run.run_id);
  EXPECT_EQ(got.params.size(), 250u);
  EXPECT_EQ(got.params.at("param.249"), "249");
  EXPECT_EQ(got.tags.count("tag.129"), 1u);
  const auto history = client_->get_metric_history(run.run_id, "curve");
  ASSERT_EQ(history.size(), 2500u);
  EXPECT_EQ(history.back().step, 2499);
  EXPECT_DOUBLE_EQ(history.back().value, 1249.5);
  // The same batch again (a replay) changes nothing.
  client_->log_batch(run.run_id, batch);
  EXPECT_EQ(client_->get_metric_history(run.run_id, "curve").size(), 2500u);
}

TEST_F(MlflowLive, OddKeysAndNonFiniteMetricsAreAccepted) {
  const RunInfo run = new_run("odd");
  LogBatch batch;
  batch.metrics = {{sanitize_key("client/site #3 (ünïcode)/loss[0]"), 1.5, 1, 0},
                   {"nan_metric", std::nan(""), 1, 0},
                   {"inf_metric", INFINITY, 1, 0},
                   {"ninf_metric", -INFINITY, 1, 0}};
  batch.params = {{sanitize_key("weird key/../x"), "v"}};
  client_->log_batch(run.run_id, batch);
  const MlflowRun got = client_->get_run(run.run_id);
  EXPECT_EQ(got.metrics.count("client/site _3 ___n__code_/loss_0_"), 1u);
  EXPECT_TRUE(std::isnan(got.metrics.at("nan_metric")));
  EXPECT_GT(got.metrics.at("inf_metric"), 1e300);
  EXPECT_LT(got.metrics.at("ninf_metric"), -1e300);
  EXPECT_EQ(got.params.at("weird key/__/x"), "v");
}

TEST_F(MlflowLive, RunsAreSearchedAcrossPages) {
  for (int i = 0; i < 7; ++i) {
    const RunInfo r = new_run("page-" + std::to_string(i));
    client_->set_tag(r.run_id, "batch", "paging");
  }
  const auto found = client_->search_runs({experiment_}, "tags.batch = 'paging'", {"start_time ASC"}, 3);
  EXPECT_EQ(found.size(), 7u);
  client_->update_run(found.front().info.run_id, "FINISHED", 1700000009999);
  EXPECT_EQ(client_->get_run(found.front().info.run_id).info.status, "FINISHED");
}

TEST_F(MlflowLive, ArtifactsRoundTripThroughTheProxy) {
  const RunInfo run = new_run("artifacts");
  ASSERT_EQ(run.artifact_uri.rfind("mlflow-artifacts:", 0), 0u) << run.artifact_uri;
  std::string bytes = "checkpoint";
  bytes += std::string("\0\x01\xff", 3);
  client_->upload_artifact(run.artifact_uri, "models/round-001.pt", bytes);
  EXPECT_EQ(client_->download_artifact(run.artifact_uri, "models/round-001.pt"), bytes);
  EXPECT_EQ(client_->list_artifacts(run.artifact_uri, "models"),
            (std::vector<std::string>{"models/round-001.pt"}));
}

TEST_F(MlflowLive, ModelRegistryVersionsTagsAndAliases) {
  const RunInfo run = new_run("registry");
  client_->upload_artifact(run.artifact_uri, "model/model.pt", "weights");
  const std::string name = "fedtrack-live-model";
  client_->create_registered_model(name);
  const ModelVersion v1 = client_->create_model_version(name, run.artifact_uri + "/model", run.run_id);
  EXPECT_EQ(v1.version, "1");
  EXPECT_EQ(v1.run_id, run.run_id);
  client_->set_model_version_tag(name, "1", "fedtrack.round", "3");
  EXPECT_EQ(client_->get_model_version(name, "1").tags.at("fedtrack.round"), "3");
  client_->set_registered_model_alias(name, "champion", "1");
  EXPECT_EQ(client_->get_model_version_by_alias(name, "champion").version, "1");
  EXPECT_EQ(client_->get_registered_model(name).aliases.at("champion"), "1");
  client_->delete_registered_model_alias(name, "champion");
  try {
    client_->get_model_version_by_alias(name, "champion");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(MlflowLive, MissingRunIsNotFoundNamingMlflowsCode) {
  try {
    client_->get_run("0123456789abcdef0123456789abcdef");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("RESOURCE_DOES_NOT_EXIST"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedtrack
