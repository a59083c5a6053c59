// The per-round tracking path: one journal transaction and one sync pass
// per round, the round's run made one round ahead (so a commit made before
// the round is recorded can name it), nothing left RUNNING by a job that
// failed, and a resumed job reusing the run made before the stop.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "tracking_fixture.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/tracking_listener.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;
using testing::FakeMlflow;
using testing::FakeRun;

class RoundPath : public testing::TrackingFixture {
 protected:
  RoundPath() : TrackingFixture("fedtrack-round-path") {}

  static RoundSummary summary(int round, int total) {
    RoundSummary s;
    s.round = round;
    s.total_rounds = total;
    s.metrics = {{"eval_accuracy", 0.5 + round / 10.0}};
    return s;
  }

  // The server-side run of a journal run key.
  const FakeRun& server_run(Journal& j, const std::string& key) {
    const auto run = j.run(key);
    EXPECT_TRUE(run && !run->run_id.empty()) << key;
    return fake_->runs.at(run->run_id);
  }

  // Journalled creates per run key.
  static std::map<std::string, int> creates(Journal& j) {
    std::map<std::string, int> n;
    for (const auto& run : j.runs()) {
      for (const auto& op : j.ops_for_run(run.run_key)) n[run.run_key] += op.op == "create";
    }
    return n;
  }

};

TEST_F(RoundPath, EachRoundIsOneTransactionAndOneSyncPassAndItsRunIdIsKnownBeforeTheRoundIsRecorded) {
  Journal j(path_);
  TrackingListener listener(j, client_.get(), {});
  listener.on_job_start({"job-1", "demo", 3});
  for (int round = 1; round <= 3; ++round) {
    // Known before the round is recorded: what JobRecorder's commit names.
    const std::string id = listener.round_run_id(round);
    EXPECT_FALSE(id.empty()) << "round " << round << "'s run is not made ahead";
    const std::size_t events = listener.report().events.size();
    listener.on_round(summary(round, 3));
    const auto report = listener.report();
    // One TrackingEventStats per journal transaction + sync pass.
    EXPECT_EQ(report.events.size() - events, 1u) << "round " << round;
    EXPECT_EQ(report.events.back().round, round);
    EXPECT_EQ(listener.round_run_id(round), id) << "the run made ahead is the round's run";
    EXPECT_EQ(j.pending_count(), 0u);
  }
  listener.on_job_end({JobStatus::kFinished, "", 3, {}});
  // Nothing made after the last round: the job and its three rounds, all finished.
  EXPECT_EQ(fake_->runs.size(), 4u);
  for (const auto& [id, run] : fake_->runs) EXPECT_EQ(run.status, "FINISHED") << id << " " << run.name;
  EXPECT_EQ(listener.report().round_run_ids.size(), 3u);
  for (const auto& [key, n] : creates(j)) EXPECT_EQ(n, 1) << key;
}

TEST_F(RoundPath, WithMlflowAwayTheRunIdIsUnknownAndTheKeyIsResolvedLater) {
  Journal j(path_);
  TrackingOptions options;
  options.timeout_seconds = 0.2;
  options.warn = [](const std::string&) {};
  TrackingListener listener(j, client_.get(), options);
  fake_->script = std::deque<long>(100, -1);  // away from the start
  listener.on_job_start({"job-1", "demo", 2});
  EXPECT_EQ(listener.round_run_id(1), "");
  EXPECT_EQ(listener.job_run_id(), "");
  listener.on_round(summary(1, 2));
  fake_->script.clear();  // back before round 2 ends: its run is made while recording round 2
  EXPECT_EQ(listener.round_run_id(2), "");
  listener.on_round(summary(2, 2));
  listener.on_job_end({JobStatus::kFinished, "", 2, {}});
  EXPECT_EQ(j.pending_count(), 0u);
  EXPECT_EQ(fake_->runs.size(), 3u);
  EXPECT_EQ(server_run(j, "job-1/round-002").status, "FINISHED");
  for (const auto& [key, n] : creates(j)) EXPECT_EQ(n, 1) << key;
}

TEST_F(RoundPath, AJobThatEndsEarlyEndsTheRoundRunMadeAheadLikeItsParent) {
  const std::vector<std::pair<JobStatus, std::string>> cases = {
      {JobStatus::kFailed, "FAILED"}, {JobStatus::kKilled, "KILLED"}, {JobStatus::kFinished, "KILLED"}};
  int n = 0;
  for (const auto& [status, expected] : cases) {
    Journal j((dir_ / ("journal-" + std::to_string(n++) + ".sqlite")).string());
    TrackingListener listener(j, client_.get(), {});
    const std::string job = "job-" + std::to_string(n);
    listener.on_job_start({job, "demo", 3});
    listener.on_round(summary(1, 3));
    listener.on_job_end({status, "stopped", 1, {}});
    EXPECT_EQ(j.run(job + "/round-001")->status, "FINISHED");
    EXPECT_EQ(j.run(job + "/round-002")->status, expected);
    EXPECT_FALSE(j.run(job + "/round-003"));
    EXPECT_EQ(server_run(j, job + "/round-002").status, expected);
    EXPECT_EQ(j.pending_count(), 0u);
  }
}

TEST_F(RoundPath, AResumedJobReusesTheRoundRunMadeBeforeTheStop) {
  Journal j(path_);
  std::string made_ahead;
  {
    TrackingListener first(j, client_.get(), {});
    first.on_job_start({"job-1", "demo", 3});
    first.on_round(summary(1, 3));
    made_ahead = first.round_run_id(2);
    ASSERT_FALSE(made_ahead.empty());
    // Stopped with an error: the run made ahead ends FAILED with the job.
    first.on_job_end({JobStatus::kFailed, "disk full", 1, {}});
    ASSERT_EQ(fake_->runs.at(made_ahead).status, "FAILED");
  }
  TrackingListener resumed(j, client_.get(), {});
  resumed.on_job_start({"job-1", "demo", 3, true, 1});
  EXPECT_EQ(resumed.round_run_id(2), made_ahead);
  EXPECT_EQ(fake_->runs.at(made_ahead).status, "RUNNING");  // runs again
  resumed.on_round(summary(2, 3));
  resumed.on_round(summary(3, 3));
  resumed.on_job_end({JobStatus::kFinished, "", 3, {}});
  EXPECT_EQ(fake_->runs.size(), 4u);  // job + 3 rounds, none twice
  for (const auto& [id, run] : fake_->runs) EXPECT_EQ(run.status, "FINISHED") << id << " " << run.name;
  for (const auto& [key, n] : creates(j)) EXPECT_EQ(n, 1) << key;
}

TEST_F(RoundPath, AResumedJobWhoseRoundWasRecordedBeforeTheStopMakesNothingTwice) {
  Journal j(path_);
  {
    TrackingListener first(j, nullptr, {});
    first.on_job_start({"job-1", "demo", 2});
    first.on_round(summary(1, 2));  // recorded, then killed before the resume point was saved
  }
  TrackingListener resumed(j, client_.get(), {});
  resumed.on_job_start({"job-1", "demo", 2, true, 0});
  resumed.on_round(summary(1, 2));  // the re-run round: same model, nothing recorded again
  resumed.on_round(summary(2, 2));
  resumed.on_job_end({JobStatus::kFinished, "", 2, {}});
  EXPECT_EQ(fake_->runs.size(), 3u);
  for (const auto& [key, n] : creates(j)) EXPECT_EQ(n, 1) << key;
  EXPECT_EQ(server_run(j, "job-1/round-002").status, "FINISHED");
}

}  // namespace
}  // namespace fedtrack
