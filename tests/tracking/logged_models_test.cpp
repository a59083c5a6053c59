// tracking.log_models: which rounds become LoggedModels (none, final, best,
// every), each at most once, journalled in the round's (or the job end's)
// transaction; a corrupt logged-model write is reported, not fatal. What the
// server makes of them is tested against a real MLflow server
// (tests/integration/test_logged_models.py).
#include <gtest/gtest.h>

#include <memory>

#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/logged_models.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "tracking_fixture.h"

namespace fedtrack {
namespace {

class LoggedModelsTest : public testing::TrackingFixture {
 protected:
  LoggedModelsTest() : TrackingFixture("fedtrack-logged-models") {}

  static RoundSummary summary(int round, int total, double accuracy) {
    RoundSummary s;
    s.round = round;
    s.total_rounds = total;
    s.metrics = {{"eval_accuracy", accuracy}, {"eval_loss", 1.0 / round}};
    const std::string bytes = "checkpoint of round " + std::to_string(round);
    s.model = std::make_shared<ModelSnapshot>([bytes] { return bytes; }, [bytes] { return bytes; });
    return s;
  }

  // Runs a journal-only job with `policy` over `accuracies` (one per round)
  // and returns the rounds whose model was journalled.
  std::vector<int> logged_rounds(Journal& j, LogModels policy, const std::vector<double>& accuracies,
                                 JobStatus status = JobStatus::kFinished) {
    LoggedModelOptions options;
    options.policy = policy;
    LoggedModels models(j, options);
    TrackingListener listener(j, nullptr, {});
    listener.set_logged_models(&models);
    const int total = static_cast<int>(accuracies.size());
    JobStart start{"job-1", "demo", total};
    models.on_job_start(start);
    listener.on_job_start(start);
    for (int r = 1; r <= total; ++r) listener.on_round(summary(r, total, accuracies[r - 1]));
    listener.on_job_end({status, "", total, {}});
    std::vector<int> rounds;
    for (const auto& m : j.models("job-1")) rounds.push_back(m.round);
    return rounds;
  }

  static std::map<std::string, int> model_ops(Journal& j) {
    std::map<std::string, int> n;
    for (const auto& op : j.ops_for_run("job-1")) {
      if (op.op.rfind("model_", 0) == 0) ++n[op.op];
    }
    return n;
  }
};

TEST_F(LoggedModelsTest, TheJobKeyTakesFourValuesAndNamesItselfOtherwise) {
  EXPECT_EQ(parse_log_models("none"), LogModels::kNone);
  EXPECT_EQ(parse_log_models("final"), LogModels::kFinal);
  EXPECT_EQ(parse_log_models("best"), LogModels::kBest);
  EXPECT_EQ(parse_log_models("every"), LogModels::kEvery);
  try {
    parse_log_models("last");
    FAIL() << "accepted 'last'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("tracking.log_models"), std::string::npos) << e.what();
  }
}

TEST_F(LoggedModelsTest, FinalIsTheLastRoundOnceTheJobFinishedAndOnlyThen) {
  Journal j(path_);
  EXPECT_EQ(logged_rounds(j, LogModels::kFinal, {0.5, 0.7, 0.6}), std::vector<int>({3}));
  // One of each write, the checkpoint's bytes waiting in the journal until sent.
  EXPECT_EQ(model_ops(j), (std::map<std::string, int>{{"model_create", 1}, {"model_upload", 1}, {"model_finalize", 1},
                                                       {"model_link", 1}, {"model_metrics", 1}}));
  EXPECT_EQ(j.blob("job-1/round-003/model/global.pt").value_or(""), "checkpoint of round 3");
  EXPECT_EQ(j.model("job-1/round-003/model")->reason, "final");
  // Writes waiting: counted as pending like every other write.
  EXPECT_EQ(j.pending_count("job-1"), j.ops_for_run("job-1").size());

  Journal failed((dir_ / "failed.sqlite").string());
  EXPECT_TRUE(logged_rounds(failed, LogModels::kFinal, {0.5, 0.7}, JobStatus::kFailed).empty());
}

TEST_F(LoggedModelsTest, BestIsEachRoundThatBeatsEveryEarlierOneEveryIsEachNoneIsNone) {
  Journal best(path_);
  EXPECT_EQ(logged_rounds(best, LogModels::kBest, {0.5, 0.7, 0.6, 0.7, 0.8}), std::vector<int>({1, 2, 5}));
  Journal every((dir_ / "every.sqlite").string());
  EXPECT_EQ(logged_rounds(every, LogModels::kEvery, {0.5, 0.4, 0.6}), std::vector<int>({1, 2, 3}));
  Journal none((dir_ / "none.sqlite").string());
  EXPECT_TRUE(logged_rounds(none, LogModels::kNone, {0.5, 0.7}).empty());
  EXPECT_TRUE(model_ops(none).empty());
}

TEST_F(LoggedModelsTest, AResumedJobRemembersTheBestScoreAndLogsNoRoundTwice) {
  Journal j(path_);
  LoggedModelOptions options;
  options.policy = LogModels::kBest;
  {
    LoggedModels models(j, options);
    TrackingListener first(j, nullptr, {});
    first.set_logged_models(&models);
    JobStart start{"job-1", "demo", 4};
    models.on_job_start(start);
    first.on_job_start(start);
    first.on_round(summary(1, 4, 0.5));
    first.on_round(summary(2, 4, 0.8));  // recorded, then killed before its resume point
  }
  LoggedModels models(j, options);
  TrackingListener resumed(j, nullptr, {});
  resumed.set_logged_models(&models);
  JobStart start{"job-1", "demo", 4, true, 1};
  models.on_job_start(start);
  resumed.on_job_start(start);
  resumed.on_round(summary(2, 4, 0.8));  // the re-run round: same model, logged before
  resumed.on_round(summary(3, 4, 0.7));  // not better than round 2
  resumed.on_round(summary(4, 4, 0.9));
  resumed.on_job_end({JobStatus::kFinished, "", 4, {}});
  std::vector<int> rounds;
  for (const auto& m : j.models("job-1")) rounds.push_back(m.round);
  EXPECT_EQ(rounds, std::vector<int>({1, 2, 4}));
  EXPECT_EQ(model_ops(j)["model_create"], 3);
}

TEST_F(LoggedModelsTest, ACorruptLoggedModelWriteIsReportedAndTheOthersGoOn) {
  Journal j(path_);
  TrackingListener listener(j, client_.get(), {});
  listener.on_job_start({"job-1", "demo", 1});
  j.add_op("job-1", "model_create", "{not json");
  j.add_op("job-1", "model_link", R"({"model": "job-1/round-009/model", "step": 9})");  // a model never journalled
  j.add_op("job-1", "batch", R"({"metrics": [["late", 1.0, 1, 1]]})");
  JournalSync sync(j, *client_);
  const SyncResult result = sync.run();
  EXPECT_EQ(result.corrupt, 2u);
  ASSERT_EQ(result.corruption.size(), 2u);
  EXPECT_NE(result.corruption[0].find("(model_create of run job-1) is corrupt"), std::string::npos)
      << result.corruption[0];
  EXPECT_NE(result.corruption[1].find("unknown logged model"), std::string::npos) << result.corruption[1];
  EXPECT_EQ(j.pending_count(), 0u);  // the batch after them was sent
}

}  // namespace
}  // namespace fedtrack
