// The parent run as MLflow 3 shows a job: a unique readable name, the
// experiment given by id, the resolved job file as an artifact, the test
// set and each client's training data as dataset inputs (by fingerprint),
// each site's metrics across rounds, and every one of these writes sent
// exactly once after an outage.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fedtrack/core/text.h"
#include "fedtrack/tracking/job_records.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "tracking_fixture.h"

namespace fedtrack {
namespace {

using testing::FakeRun;

const std::string kTestPrint = std::string(32, 'c') + std::string(32, 'd');

class JobRecords : public testing::TrackingFixture {
 protected:
  JobRecords() : TrackingFixture("fedtrack-job-records") {}

  static JobStart start(const std::string& id, int rounds) {
    JobStart s{id, "fashion", rounds};
    auto card = std::make_shared<ModelCard>();
    card->model = "mlp";
    card->input_shape = {1, 28, 28};
    card->num_classes = 10;
    s.model_card = card;
    s.test_set = std::make_shared<DatasetInfo>(DatasetInfo{"fashion-mnist-test", kTestPrint, 500, "/data/fmnist"});
    return s;
  }

  static RoundSummary summary(int round, int total) {
    RoundSummary s;
    s.round = round;
    s.total_rounds = total;
    s.metrics = {{"eval_accuracy", 0.5 + round / 10.0}, {"eval_loss", 1.0 / round}, {"train_loss", 2.0 / round}};
    for (int c = 0; c < 3; ++c) {
      ClientRoundStat stat;
      stat.client_id = "client-00" + std::to_string(c);
      stat.num_examples = 100 + c;
      stat.fit_metrics = {{"train_loss", c + 1.0 / round}};
      stat.evaluate_metrics = {{"accuracy", 0.1 * c + round}};
      stat.data_fingerprint = std::string(64, static_cast<char>('a' + c));
      s.clients.push_back(stat);
    }
    return s;
  }

  static TrackingOptions options() {
    TrackingOptions o;
    o.job_file = "rounds: 2\ntracking:\n  uri: http://127.0.0.1:5000\n";
    o.warn = [](const std::string& line) { ADD_FAILURE() << line; };
    return o;
  }

  const FakeRun& parent(Journal& j, const std::string& job_id) { return fake_->runs.at(j.run(job_id)->run_id); }

  static std::vector<std::pair<std::int64_t, double>> history(const FakeRun& run, const std::string& key) {
    std::vector<std::pair<std::int64_t, double>> out;
    for (const auto& m : run.metrics) {
      if (m.at("key") == key) out.emplace_back(m.at("step").get<std::int64_t>(), m.at("value").get<double>());
    }
    return out;
  }

  void run_job(TrackingListener& listener, const std::string& id, int rounds) {
    listener.on_job_start(start(id, rounds));
    listener.on_initial_evaluation({{"eval_accuracy", 0.1}, {"eval_loss", 2.3}});
    for (int r = 1; r <= rounds; ++r) listener.on_round(summary(r, rounds));
    listener.on_job_end({JobStatus::kFinished, "", rounds, {}});
  }
};

TEST(ParentRunName, IsTheJobNameAndTheJobIdsShortId) {
  EXPECT_EQ(parent_run_name("fashion", "fashion-20261201T070000Z-0a1b2c"), "fashion-0a1b2c");
  EXPECT_EQ(parent_run_name("fashion", "fashion-20261201T070000Z-ffffff"), "fashion-ffffff");
  EXPECT_EQ(parent_run_name("fashion", "job-1"), "fashion-job-1");  // an id of another shape: all of it
  EXPECT_EQ(parent_run_name("fashion", "fashion-"), "fashion-fashion-");
}

TEST(DatasetInputs, AreWithinMlflowsLimitsWhateverASiteCallsItself) {
  const std::string site = std::string(600, 's') + "\xff";  // a site's own name: long, not UTF-8
  const DatasetInput in = training_input(site, std::string(64, 'a'), 3, nullptr);
  EXPECT_LE(in.name.size(), 500u);
  EXPECT_EQ(in.name.substr(in.name.size() - 6), "-train");
  EXPECT_TRUE(is_valid_utf8(in.name));
  EXPECT_TRUE(is_valid_utf8(in.source));
  EXPECT_LE(in.digest.size(), 36u);
  EXPECT_EQ(in.schema, "");  // no model card, no schema
}

TEST_F(JobRecords, TheParentRunIsNamedPerJobAndCarriesTheJobFileAndTheTestSet) {
  Journal j(path_);
  TrackingListener first(j, client_.get(), options());
  run_job(first, "fashion-20261201T070000Z-0a1b2c", 2);
  TrackingListener second(j, client_.get(), options());
  run_job(second, "fashion-20261201T070001Z-3d4e5f", 2);
  EXPECT_EQ(parent(j, "fashion-20261201T070000Z-0a1b2c").name, "fashion-0a1b2c");
  EXPECT_EQ(parent(j, "fashion-20261201T070001Z-3d4e5f").name, "fashion-3d4e5f");

  const FakeRun& run = parent(j, "fashion-20261201T070000Z-0a1b2c");
  EXPECT_EQ(fake_->artifacts.at("0/" + run.id + "/artifacts/job.yaml"), options().job_file);
  ASSERT_EQ(run.inputs.size(), 4u);  // the test set, three clients' training data
  const nlohmann::json& test = run.inputs.front();
  EXPECT_EQ(test.at("dataset").at("name"), "fashion-mnist-test");
  EXPECT_EQ(test.at("dataset").at("digest"), std::string(16, 'c'));
  EXPECT_EQ(test.at("dataset").at("source_type"), "local");
  EXPECT_EQ(nlohmann::json::parse(test.at("dataset").at("source").get<std::string>()).at("uri"), "/data/fmnist");
  EXPECT_EQ(test.at("tags"), nlohmann::json::parse(R"([{"key": "mlflow.data.context", "value": "evaluation"}])"));
  const auto profile = nlohmann::json::parse(test.at("dataset").at("profile").get<std::string>());
  EXPECT_EQ(profile.at("num_rows"), 500);
  EXPECT_EQ(profile.at("fingerprint_sha256"), kTestPrint);
  const auto schema = nlohmann::json::parse(test.at("dataset").at("schema").get<std::string>());
  const auto features = nlohmann::json::parse(schema.at("mlflow_tensorspec").at("features").get<std::string>());
  EXPECT_EQ(features.at(0).at("tensor-spec").at("shape"), nlohmann::json::parse("[-1, 1, 28, 28]"));
  for (int c = 0; c < 3; ++c) {
    const nlohmann::json& train = run.inputs.at(1 + c).at("dataset");
    EXPECT_EQ(train.at("name"), "client-00" + std::to_string(c) + "-train");
    EXPECT_EQ(train.at("digest"), std::string(16, static_cast<char>('a' + c)));
    EXPECT_EQ(train.at("source_type"), "fedtrack-site");
    EXPECT_EQ(run.inputs.at(1 + c).at("tags").at(0).at("value"), "training");
  }
  // Centralized metrics name the test set; a client's fit metrics its training data.
  for (const auto& m : run.metrics) {
    const std::string key = m.at("key");
    if (key == "eval_accuracy") {
      EXPECT_EQ(m.at("dataset_name"), "fashion-mnist-test");
      EXPECT_EQ(m.at("dataset_digest"), std::string(16, 'c'));
    } else if (key == "client/client-001/train_loss") {
      EXPECT_EQ(m.at("dataset_name"), "client-001-train");
    } else if (key == "train_loss") {
      EXPECT_FALSE(m.contains("dataset_name"));
    }
  }
}

TEST_F(JobRecords, EachSitesMetricsAreCurvesOnTheParentOnePointPerRound) {
  Journal j(path_);
  TrackingListener listener(j, client_.get(), options());
  run_job(listener, "fashion-x-000001", 3);
  const FakeRun& run = parent(j, "fashion-x-000001");
  for (int c = 0; c < 3; ++c) {
    const std::string prefix = "client/client-00" + std::to_string(c) + "/";
    const auto loss = history(run, prefix + "train_loss");
    ASSERT_EQ(loss.size(), 3u) << prefix;
    for (int r = 1; r <= 3; ++r) {
      EXPECT_EQ(loss[r - 1].first, r);
      EXPECT_DOUBLE_EQ(loss[r - 1].second, c + 1.0 / r);
    }
    EXPECT_EQ(history(run, prefix + "eval_accuracy").size(), 3u);
    EXPECT_TRUE(history(run, prefix + "bytes_up").empty()) << "bookkeeping stays on the round's run";
  }
  EXPECT_EQ(history(run, "eval_accuracy").size(), 4u);  // step 0 and three rounds
}

TEST_F(JobRecords, AnExperimentGivenByIdTakesTheRunsWithoutLookingUpItsName) {
  fake_->experiments["by-id"] = "7";
  Journal j(path_);
  TrackingOptions o = options();
  o.experiment = "by-id";
  o.experiment_id = "7";
  TrackingListener listener(j, client_.get(), o);
  run_job(listener, "fashion-x-000002", 1);
  for (const auto& [id, run] : fake_->runs) EXPECT_EQ(run.experiment_id, "7") << run.name;
  EXPECT_EQ(fake_->count("experiments/get-by-name"), 0u);
  EXPECT_EQ(fake_->count("experiments/create"), 0u);
}

TEST_F(JobRecords, EveryNewWriteIsSentExactlyOnceAfterAnOutage) {
  Journal j(path_);
  TrackingOptions o = options();
  o.timeout_seconds = 0.2;
  o.warn = [](const std::string&) {};
  TrackingListener listener(j, client_.get(), o);
  fake_->script = std::deque<long>(1000, -1);  // away from the start: everything waits in the journal
  run_job(listener, "fashion-x-000003", 3);
  EXPECT_TRUE(fake_->runs.empty());
  fake_->script.clear();
  // Sent in two passes, the first cut short by a lost answer to the upload
  // (the server stored it) and a failed log-inputs: each is resent and kept once.
  std::deque<long> faults;
  for (int i = 0; i < 3; ++i) faults.push_back(0);  // experiment lookup, parent create, params
  faults.push_back(-2);                              // log-inputs of the test set: done, answer lost
  fake_->script = faults;
  const SyncResult cut = JournalSync(j, *client_).run();
  EXPECT_TRUE(cut.stopped);
  const SyncResult rest = JournalSync(j, *client_).run();
  EXPECT_FALSE(rest.stopped) << rest.stop_reason;
  EXPECT_EQ(j.pending_count(), 0u);
  EXPECT_EQ(JournalSync(j, *client_).run().sent, 0u);  // nothing twice

  const FakeRun& run = parent(j, "fashion-x-000003");
  EXPECT_EQ(run.inputs.size(), 4u);
  EXPECT_EQ(fake_->artifacts.size(), 1u);
  EXPECT_EQ(fake_->artifacts.begin()->second, o.job_file);
  EXPECT_EQ(history(run, "client/client-002/train_loss").size(), 3u);
  EXPECT_EQ(history(run, "eval_accuracy").size(), 4u);
  std::size_t runs = 0;
  for (const auto& [id, r] : fake_->runs) runs += !r.deleted;
  EXPECT_EQ(runs, 4u);  // job + 3 rounds
}

TEST_F(JobRecords, AResumedJobLogsOnlyTheTrainingDataItHadNotLogged) {
  Journal j(path_);
  {
    TrackingListener first(j, client_.get(), options());
    first.on_job_start(start("fashion-x-000004", 3));
    first.on_round(summary(1, 3));
    first.on_job_end({JobStatus::kFailed, "stopped", 1, {}});
  }
  const std::size_t inputs_before = fake_->count("runs/log-inputs");
  TrackingListener resumed(j, client_.get(), options());
  JobStart again = start("fashion-x-000004", 3);
  again.resumed = true;
  again.completed_rounds = 1;
  resumed.on_job_start(again);
  resumed.on_round(summary(2, 3));
  EXPECT_EQ(fake_->count("runs/log-inputs"), inputs_before) << "the same clients' data again: no request";
  RoundSummary third = summary(3, 3);
  third.clients[0].data_fingerprint = std::string(64, 'f');  // a site whose data changed
  resumed.on_round(third);
  EXPECT_EQ(fake_->count("runs/log-inputs"), inputs_before + 1);
  EXPECT_EQ(parent(j, "fashion-x-000004").inputs.size(), 5u);
}

}  // namespace
}  // namespace fedtrack
