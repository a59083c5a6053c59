// Exactly-once run creation: a create that the server (or a gateway in front
// of it) carried out but answered with 5xx, or answered after the client's
// timeout, must not leave a second run; runs already duplicated are reduced
// to one.
#include <gtest/gtest.h>

#include "fake_mlflow.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

using testing::FakeMlflow;
using testing::FakeRun;

class ExactlyOnce : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-exactly-once");
    auto fake = std::make_unique<FakeMlflow>();
    fake_ = fake.get();
    MlflowConfig config;
    config.tracking_uri = "http://127.0.0.1:1";
    config.max_retries = 3;
    config.backoff_jitter = 0;
    client_ = std::make_unique<MlflowClient>(config, std::move(fake), [](double) {});
  }
  void TearDown() override { testing::remove_test_dir(dir_); }

  std::size_t active_runs() const {
    std::size_t n = 0;
    for (const auto& [id, run] : fake_->runs) n += !run.deleted;
    return n;
  }

  CreatedRun create(bool may_exist = false) {
    return client_->create_run_once("0", {"fedtrack.run_key", "job-1"}, "demo", 1000, {{"a", "b"}}, "", may_exist);
  }

  std::filesystem::path dir_;
  FakeMlflow* fake_ = nullptr;
  std::unique_ptr<MlflowClient> client_;
};

TEST_F(ExactlyOnce, ACreateAnswered500AfterTheServerMadeItIsFoundNotMadeAgain) {
  fake_->script = {-3};  // the create is carried out, then a 500 comes back
  const CreatedRun c = create();
  EXPECT_EQ(active_runs(), 1u);
  EXPECT_TRUE(c.found);
  EXPECT_EQ(c.info.run_id, "run1");
  EXPECT_EQ(fake_->count("runs/create"), 1u);
  EXPECT_EQ(fake_->count("runs/search"), 1u);
}

TEST_F(ExactlyOnce, ACreateAnsweredAfterTheTimeoutIsFoundNotMadeAgain) {
  fake_->script = {-2};  // carried out, the answer never arrives in time
  const CreatedRun c = create();
  EXPECT_EQ(active_runs(), 1u);
  EXPECT_EQ(c.info.run_id, "run1");
  EXPECT_EQ(fake_->count("runs/create"), 1u);
}

TEST_F(ExactlyOnce, ACreateThatNeverArrivedIsMadeAfterTheLookupFindsNothing) {
  fake_->script = {-1, 0, 503};  // no connection; the lookup; then a 503 that did nothing
  const CreatedRun c = create();
  EXPECT_EQ(active_runs(), 1u);
  EXPECT_FALSE(c.found);
  EXPECT_EQ(fake_->count("runs/create"), 3u);
  EXPECT_EQ(fake_->count("runs/search"), 2u);  // before each further attempt
}

TEST_F(ExactlyOnce, AnInvalidCreateIsNotRetried) {
  struct Refuse : HttpTransport {
    int calls = 0;
    HttpResponse send(const HttpRequest&) override {
      ++calls;
      return {400, R"({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad tag"})", {}};
    }
  };
  auto refuse = std::make_unique<Refuse>();
  Refuse* r = refuse.get();
  MlflowConfig config;
  config.tracking_uri = "http://127.0.0.1:1";
  MlflowClient client(config, std::move(refuse), [](double) {});
  try {
    client.create_run_once("0", {"fedtrack.run_key", "k"}, "n", 1, {}, "", false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(r->calls, 1);
}

TEST_F(ExactlyOnce, DuplicatesAlreadyOnTheServerAreReducedToTheEarliest) {
  for (const auto& [id, start] : std::vector<std::pair<std::string, std::int64_t>>{{"b", 5}, {"a", 5}, {"c", 9}}) {
    FakeRun run;
    run.id = id;
    run.experiment_id = "0";
    run.start_time = start;
    run.tags["fedtrack.run_key"] = "job-1";
    fake_->runs[id] = run;
  }
  const CreatedRun c = create(/*may_exist=*/true);
  EXPECT_EQ(c.info.run_id, "a");  // earliest start, then lowest id
  EXPECT_EQ(c.removed_duplicates, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(fake_->count("runs/create"), 0u);
  EXPECT_EQ(active_runs(), 1u);
  EXPECT_EQ(fake_->runs.at("b").status, "KILLED");
  EXPECT_EQ(fake_->runs.at("c").status, "KILLED");
  EXPECT_TRUE(fake_->runs.at("b").deleted);
  EXPECT_FALSE(fake_->runs.at("a").deleted);
}

TEST_F(ExactlyOnce, ADuplicateTheServerWillNotLetUsDeleteIsReportedAndTheRunIsStillUsed) {
  for (const std::string id : {"a", "b"}) {
    FakeRun run;
    run.id = id;
    run.experiment_id = "0";
    run.tags["fedtrack.run_key"] = "job-1";
    fake_->runs[id] = run;
  }
  fake_->script = {0, 0, 403};  // search, end "b", then runs/delete refused
  const CreatedRun c = create(/*may_exist=*/true);
  EXPECT_EQ(c.info.run_id, "a");
  EXPECT_TRUE(c.removed_duplicates.empty());
  ASSERT_EQ(c.kept_duplicates.size(), 1u);
  EXPECT_EQ(c.kept_duplicates[0].rfind("b (", 0), 0u) << c.kept_duplicates[0];
  EXPECT_EQ(fake_->count("runs/create"), 0u);
}

// Through the journal: the job goes on, every run exists once, and the sync
// says which duplicates it removed and why.
TEST_F(ExactlyOnce, AJobWhoseCreatesFailAfterForwardingHasOneRunPerKey) {
  Journal j((dir_ / "journal.sqlite").string());
  TrackingListener listener(j, client_.get(), {});
  // get-by-name, then the parent's create: carried out, answered 500.
  fake_->script = {0, -3};
  listener.on_job_start({"job-1", "demo", 1});
  RoundSummary s;
  s.round = 1;
  s.total_rounds = 1;
  s.metrics = {{"eval_accuracy", 0.5}};
  fake_->script = {-2};  // the round's create: carried out, answer lost
  listener.on_round(s);
  listener.on_job_end({JobStatus::kFinished, "", 1, {}});
  EXPECT_EQ(j.pending_count(), 0u);
  EXPECT_EQ(active_runs(), 2u);
  EXPECT_EQ(fake_->count("runs/create"), 2u);
  for (const auto& [id, run] : fake_->runs) EXPECT_EQ(run.status, "FINISHED") << id;
  EXPECT_EQ(fake_->runs.at("run2").tags.at("mlflow.parentRunId"), "run1");
}

TEST_F(ExactlyOnce, SyncKeepsOneOfSeveralRunsWithTheSameKeyAndSaysWhich) {
  Journal j((dir_ / "journal.sqlite").string());
  TrackingListener offline(j, nullptr, {});
  offline.on_job_start({"job-1", "demo", 0});  // no rounds: no round run made ahead, one run
  // An earlier attempt was counted (a crash mid-create), and the server has
  // the run twice (a gateway that forwarded the create twice).
  const auto ops = j.pending_ops();
  j.mark_attempt(ops.front().seq);
  for (const std::string id : {"x2", "x1"}) {
    FakeRun run;
    run.id = id;
    run.experiment_id = "0";
    run.start_time = 7;
    run.tags["fedtrack.run_key"] = "job-1";
    fake_->runs[id] = run;
  }
  const SyncResult r = JournalSync(j, *client_).run();
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(j.run("job-1")->run_id, "x1");
  EXPECT_EQ(active_runs(), 1u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("kept MLflow run x1"), std::string::npos) << r.notes[0];
  EXPECT_NE(r.notes[0].find("deleted x2"), std::string::npos) << r.notes[0];
  EXPECT_EQ(fake_->count("runs/create"), 0u);
}

TEST_F(ExactlyOnce, ACreateThatReachesTheServerAfterTheLookupIsRemovedByTheNextSync) {
  Journal j((dir_ / "journal.sqlite").string());
  TrackingListener offline(j, nullptr, {});
  offline.on_job_start({"job-1", "demo", 0});  // no rounds: no round run made ahead, one run
  fake_->script = {0, -1};  // get-by-name; the create times out in a slow gateway
  const SyncResult first = JournalSync(j, *client_).run();
  EXPECT_FALSE(first.stopped);
  EXPECT_EQ(j.run("job-1")->run_id, "run1");  // looked up, not found, created
  EXPECT_EQ(j.pending_count(), 0u);           // every write sent
  ASSERT_EQ(j.pending_ops().size(), 1u);      // and a look later journalled (a check, not a write)
  EXPECT_EQ(j.pending_ops().front().op, "verify");
  // The slow create lands after the lookup: a second run with the same key,
  // one that the plain rule (lowest id) would keep.
  FakeRun late;
  late.id = "run0";
  late.experiment_id = "0";
  late.start_time = fake_->runs.at("run1").start_time;
  late.tags["fedtrack.run_key"] = "job-1";
  fake_->runs["run0"] = late;
  const SyncResult second = JournalSync(j, *client_).run();
  EXPECT_TRUE(j.pending_ops().empty());
  EXPECT_EQ(active_runs(), 1u);
  EXPECT_TRUE(fake_->runs.at("run0").deleted);
  EXPECT_EQ(fake_->runs.at("run0").status, "KILLED");
  ASSERT_EQ(second.notes.size(), 1u);
  EXPECT_NE(second.notes[0].find("kept MLflow run run1 (the run this journal uses)"), std::string::npos)
      << second.notes[0];
}

TEST_F(ExactlyOnce, ARunRecordedThroughAProxyIsSyncedDirectlyToTheSameServer) {
  Journal j((dir_ / "journal.sqlite").string());
  {
    MlflowConfig via;
    via.tracking_uri = "http://127.0.0.1:2";  // the proxy's address
    auto fake = std::make_unique<FakeMlflow>();
    FakeMlflow* shared = fake.get();
    MlflowClient proxy(via, std::move(fake), [](double) {});
    TrackingListener listener(j, &proxy, {});
    listener.on_job_start({"job-1", "demo", 1});
    fake_->runs = shared->runs;  // the same server behind both addresses
  }
  j.add_op("job-1", "end", R"({"status": "FINISHED", "end_time": 5})");  // journalled only
  ASSERT_EQ(j.pending_count(), 1u);
  const SyncResult r = JournalSync(j, *client_).run();
  EXPECT_FALSE(r.stopped) << r.stop_reason;
  EXPECT_EQ(r.sent, 1u);
  EXPECT_EQ(fake_->runs.at("run1").status, "FINISHED");

  // A server that does not have the run: refused, naming where it lives.
  Journal other((dir_ / "other.sqlite").string());
  {
    MlflowConfig elsewhere;
    elsewhere.tracking_uri = "http://127.0.0.1:3";
    MlflowClient c(elsewhere, std::make_unique<FakeMlflow>(), [](double) {});
    TrackingListener listener(other, &c, {});
    listener.on_job_start({"job-2", "demo", 1});
  }
  other.add_op("job-2", "end", R"({"status": "FINISHED", "end_time": 5})");
  fake_->runs.clear();
  const SyncResult refused = JournalSync(other, *client_).run();
  EXPECT_TRUE(refused.stopped);
  EXPECT_EQ(refused.stop_code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.stop_reason.find("http://127.0.0.1:3"), std::string::npos) << refused.stop_reason;

  // Only a round waits, but its job's run lives elsewhere: refused too (its
  // parent id would name nothing here).
  other.mark_failed(other.pending_ops().front().seq, "set aside");
  other.add_run({"job-2/round-001", "job-2", "round", 1, "round-001", "Default", "job-2", "RUNNING", 1, 0, "", "", ""});
  other.add_op("job-2/round-001", "create", "{}");
  const SyncResult orphan_round = JournalSync(other, *client_).run();
  EXPECT_TRUE(orphan_round.stopped);
  EXPECT_EQ(orphan_round.stop_code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(fake_->count("runs/create"), 0u);
}

}  // namespace
}  // namespace fedtrack
