#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tracking_fixture.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/tracking_listener.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;
using testing::FakeMlflow;

class JournalTest : public testing::TrackingFixture {
 protected:
  JournalTest() : TrackingFixture("fedtrack-journal", "sub/journal.sqlite") {}

  RoundSummary summary(int round) {
    RoundSummary s;
    s.round = round;
    s.total_rounds = 2;
    s.metrics = {{"eval_accuracy", 0.5 + round / 10.0}, {"eval_loss", std::nan("")}};
    s.fit_config = {{"lr", 0.05}, {"round", std::int64_t{round}}};
    ClientRoundStat c;
    c.client_id = "client-000";
    c.num_examples = 10;
    c.fit_metrics = {{"train_loss", 1.0}};
    c.data_fingerprint = std::string(64, 'a');
    s.clients = {c};
    return s;
  }

  void run_job(TrackingListener& listener) {
    listener.on_job_start({"job-1", "demo", 2});
    listener.on_initial_evaluation({{"eval_accuracy", 0.1}});
    listener.on_round(summary(1));
    listener.on_round(summary(2));
    listener.on_job_end({JobStatus::kFinished, "", 2, {}});
  }

};

TEST_F(JournalTest, WritesSurviveReopeningInOrder) {
  {
    Journal j(path_);
    j.transaction([&] {
      j.add_run({"job-1", "job-1", "job", 0, "demo", "Default", "", "RUNNING", 1, 0, "", "", ""});
      j.add_op("job-1", "create", "{}");
      j.add_op("job-1", "batch", R"({"metrics": []})");
    });
  }
  Journal j(path_);
  const auto ops = j.pending_ops();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].op, "create");
  EXPECT_EQ(ops[1].op, "batch");
  EXPECT_LT(ops[0].seq, ops[1].seq);
  j.mark_done(ops[0].seq);
  EXPECT_EQ(j.pending_count(), 1u);
  EXPECT_EQ(j.run("job-1")->run_name, "demo");
}

// What `fedtrack runs` shows comes from the journal's own reader: the last
// value of each global metric; a corrupt write is named, never fatal.
TEST_F(JournalTest, RunMetricsReadTheRunsBatchesAndNameCorruptWrites) {
  Journal j(path_);
  j.transaction([&] {
    j.add_run({"job-1/round-001", "job-1", "round", 1, "round-001", "Default", "job-1", "RUNNING", 1, 0, "", "", ""});
    j.add_op("job-1/round-001", "create", "{}");
    j.add_op("job-1/round-001", "batch", R"({"metrics": [["eval_accuracy", 0.5, 1, 1], ["client/a/loss", 2.0, 1, 1]]})");
    j.add_op("job-1/round-001", "batch", R"({"metrics": [["eval_accuracy", 0.75, 2, 1]]})");
    j.add_op("job-1/round-001", "batch", R"({"metrics": "not a list"})");
    j.add_op("job-1/round-001", "verify", "{}");
  });
  std::vector<std::string> corrupt;
  const auto metrics = j.run_metrics("job-1/round-001", &corrupt);
  EXPECT_EQ(metrics, (std::map<std::string, double>{{"eval_accuracy", 0.75}}));
  ASSERT_EQ(corrupt.size(), 1u);
  EXPECT_NE(corrupt[0].find(path_), std::string::npos) << corrupt[0];
  EXPECT_EQ(j.run_metrics("job-1/round-001").size(), 1u);  // no list to fill: still no throw
  EXPECT_EQ(j.pending_count("job-1/round-001"), 4u);      // the check is not a write
  EXPECT_EQ(j.pending_count("no-such-run"), 0u);
}

TEST_F(JournalTest, AFifoOrDirectoryAtTheJournalPathIsRefusedNotWaitedOn) {
  ::alarm(30);  // SQLite blocking on a FIFO fails the test instead of hanging the suite
  const std::string fifo = (dir_ / "fifo.sqlite").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  try {
    Journal journal(fifo);
    ADD_FAILURE() << "a FIFO was opened as a journal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), fifo + " is not a regular file (a FIFO)");
  }
  fs::create_directories(dir_ / "folder.sqlite");
  EXPECT_THROW(Journal((dir_ / "folder.sqlite").string()), Error);
  ::alarm(0);
}

TEST_F(JournalTest, AFailedTransactionLeavesNothing) {
  Journal j(path_);
  EXPECT_THROW(j.transaction([&] {
    j.add_op("job-1", "create", "{}");
    throw Error::internal("crash mid-event");
  }),
               Error);
  EXPECT_EQ(j.pending_count(), 0u);
}

TEST_F(JournalTest, ListenerCostsOneLogBatchPerRunTouchedPerRound) {
  Journal j(path_);
  TrackingListener listener(j, client_.get(), {});
  listener.on_job_start({"job-1", "demo", 2});
  const auto before = fake_->requests.size();
  const auto batches_before = fake_->count("log-batch");
  listener.on_round(summary(1));
  // create the next round's run, this round's log-batch, end it; the
  // parent's log-batch (global and per-client metrics); the parent's
  // log-inputs for the client's training data, new in this round.
  EXPECT_EQ(fake_->requests.size() - before, 5u);
  EXPECT_EQ(fake_->count("log-batch") - batches_before, 2u);
  EXPECT_EQ(fake_->count("runs/log-inputs"), 1u);
  EXPECT_EQ(j.pending_count(), 0u);
  // The same client with the same data: nothing new to log as an input.
  const auto before_2 = fake_->requests.size();
  listener.on_round(summary(2));
  EXPECT_EQ(fake_->requests.size() - before_2, 3u);  // the last round makes no run ahead
  EXPECT_EQ(fake_->count("runs/log-inputs"), 1u);
  const auto& child = fake_->runs.at("run2");
  EXPECT_EQ(child.name, "round-001");
  EXPECT_EQ(child.tags.at("mlflow.parentRunId"), "run1");
  EXPECT_EQ(child.params.at("lr"), "0.05");
  EXPECT_EQ(child.status, "FINISHED");
  EXPECT_EQ(child.tags.at("client/client-000/data_fingerprint"), std::string(64, 'a'));
}

TEST_F(JournalTest, OfflineJobIsJournalledAndSyncsExactlyOnceLater) {
  Journal j(path_);
  TrackingListener offline(j, nullptr, {});
  run_job(offline);
  EXPECT_TRUE(fake_->requests.empty());
  const std::size_t pending = j.pending_count();
  EXPECT_GT(pending, 0u);
  EXPECT_EQ(offline.report().run_id, "");

  const SyncResult first = JournalSync(j, *client_).run();
  EXPECT_EQ(first.sent, pending);
  EXPECT_FALSE(first.stopped);
  EXPECT_EQ(fake_->runs.size(), 3u);  // job + 2 rounds
  const auto& parent = fake_->runs.at("run1");
  EXPECT_EQ(parent.status, "FINISHED");
  // initial accuracy + 2 rounds x (2 global metrics + the client's train_loss)
  EXPECT_EQ(parent.metrics.size(), 7u);
  EXPECT_EQ(parent.inputs.size(), 1u);  // the client's training data, once

  const auto requests = fake_->requests.size();
  const SyncResult second = JournalSync(j, *client_).run();
  EXPECT_EQ(second.sent, 0u);
  EXPECT_EQ(fake_->requests.size(), requests);
}

TEST_F(JournalTest, ARunWhoseCreateAnswerWasLostIsNotCreatedTwice) {
  Journal j(path_);
  TrackingListener offline(j, nullptr, {});
  offline.on_job_start({"job-1", "demo", 0});  // no rounds: no round run made ahead, one run
  // get-by-name is served; the create reaches the server but its answer is lost.
  fake_->script = {0, -2};
  const SyncResult lost = JournalSync(j, *client_).run();
  EXPECT_TRUE(lost.stopped);
  EXPECT_EQ(fake_->runs.size(), 1u);
  EXPECT_EQ(j.run("job-1")->run_id, "");

  const SyncResult retry = JournalSync(j, *client_).run();
  EXPECT_FALSE(retry.stopped);
  EXPECT_EQ(fake_->runs.size(), 1u);  // found by its fedtrack.run_key tag, not created again
  EXPECT_EQ(j.run("job-1")->run_id, "run1");
  EXPECT_EQ(fake_->count("runs/search"), 1u);
}

TEST_F(JournalTest, ServerAwayKeepsWritesPendingAndTheJobGoesOn) {
  Journal j(path_);
  TrackingOptions options;
  options.timeout_seconds = 0.2;
  std::vector<std::string> warnings;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  TrackingListener listener(j, client_.get(), options);
  listener.on_job_start({"job-1", "demo", 2});
  listener.on_initial_evaluation({{"eval_accuracy", 0.1}});
  fake_->script = std::deque<long>(100, -1);  // the server goes away
  listener.on_round(summary(1));
  listener.on_round(summary(2));
  listener.on_job_end({JobStatus::kKilled, "stopped by request", 2, {}});
  EXPECT_EQ(warnings.size(), 1u) << "one warning while the server stays away";
  const TrackingReport report = listener.report();
  EXPECT_EQ(report.run_id, "run1");
  // Round 1's run was made ahead with the parent, while the server was there.
  EXPECT_EQ(report.round_run_ids, (std::vector<std::string>{"run2", ""}));
  EXPECT_GT(report.pending, 0u);

  fake_->script.clear();  // back again
  const SyncResult result = JournalSync(j, *client_).run();
  EXPECT_EQ(result.sent, report.pending);
  EXPECT_EQ(fake_->runs.at("run1").status, "KILLED");
  EXPECT_EQ(fake_->runs.at("run1").tags.at("mlflow.note.content"), "stopped by request");
  EXPECT_EQ(fake_->runs.size(), 3u);
}

}  // namespace
}  // namespace fedtrack
