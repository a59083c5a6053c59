// What reaches the journal and MLflow from untrusted text: bytes that are not
// UTF-8, values over MLflow's limits, secrets in URLs, corrupt journal
// payloads, and runs orphaned by a killed process.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracking_fixture.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/tracking_listener.h"

namespace fedtrack {
namespace {

using testing::FakeMlflow;

class UntrustedText : public testing::TrackingFixture {
 protected:
  UntrustedText() : TrackingFixture("fedtrack-untrusted") {}

};

const std::string kLatin1 = "caf\xe9";  // "café" in Latin-1: not UTF-8

TEST_F(UntrustedText, BytesThatAreNotUtf8NeverEndTheJobAndReachMlflowAsReplacementCharacters) {
  Journal j(path_);
  TrackingOptions options;
  options.job_tags = {{"mlflow.source.name", "fedtrack run jobs/" + kLatin1 + ".yaml"}};
  options.job_params = {{"data.path", "/data/" + kLatin1}, {"note\xff", "x"}};
  options.user = "us\xc3" "er";
  std::vector<std::string> warnings;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  TrackingListener listener(j, client_.get(), options);
  ASSERT_NO_THROW(listener.on_job_start({"job-1", "demo-" + kLatin1, 1}));
  RoundSummary s;
  s.round = 1;
  s.total_rounds = 1;
  s.metrics = {{"eval_accuracy", 0.5}, {"acc\xe9", 0.25}};
  ClientRoundStat c;
  c.client_id = "site-\xe9";
  c.ok = false;
  c.error = "task failed: " + kLatin1 + " \xc0\xaf";
  c.data_fingerprint = "\xfe\xff" + std::string(62, 'a');
  c.fit_metrics = {{"loss\xe9", 1.0}};
  s.clients = {c};
  ASSERT_NO_THROW(listener.on_round(s));
  ASSERT_NO_THROW(listener.on_job_end({JobStatus::kFailed, "failed on " + kLatin1, 1, {}}));
  EXPECT_EQ(j.pending_count(), 0u);
  EXPECT_EQ(j.failed_count(), 0u);
  ASSERT_EQ(fake_->runs.size(), 2u);
  const auto& parent = fake_->runs.at("run1");
  EXPECT_EQ(parent.name, "demo-caf\xef\xbf\xbd-job-1");  // "<job name>-<job id>" when the id is not the name's
  EXPECT_EQ(parent.tags.at("mlflow.source.name"), "fedtrack run jobs/caf\xef\xbf\xbd.yaml");
  EXPECT_EQ(parent.tags.at("mlflow.note.content"), "failed on caf\xef\xbf\xbd");
  EXPECT_EQ(parent.params.at("data.path"), "/data/caf\xef\xbf\xbd");
  EXPECT_EQ(parent.status, "FAILED");
  const auto& child = fake_->runs.at("run2");
  for (const auto& [k, v] : child.tags) {
    EXPECT_TRUE(is_valid_utf8(k)) << k;
    EXPECT_TRUE(is_valid_utf8(v)) << k;
  }
  EXPECT_EQ(child.tags.at("client/site-_/error"), "task failed: caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
  for (const auto& m : child.metrics) EXPECT_TRUE(is_valid_utf8(m.at("key").get<std::string>()));
  EXPECT_TRUE(warnings.empty()) << warnings.front();
}

TEST_F(UntrustedText, LongValuesAreCutOnACharacterBoundaryWithinMlflowsLimits) {
  Journal j(path_);
  TrackingOptions options;
  options.job_params = {{"long", std::string(5999, 'p') + "\xc3\xa9"}};  // 6001 bytes, é straddles 6000
  TrackingListener listener(j, client_.get(), options);
  listener.on_job_start({"job-1", "demo", 1});
  RoundSummary s;
  s.round = 1;
  s.total_rounds = 1;
  ClientRoundStat c;
  c.client_id = "c";
  c.ok = false;
  c.error = std::string(7998, 'e') + "\xe2\x82\xac";  // the euro sign straddles 8000
  s.clients = {c};
  listener.on_round(s);
  EXPECT_EQ(fake_->runs.at("run1").params.at("long"), std::string(5999, 'p'));
  EXPECT_EQ(fake_->runs.at("run2").tags.at("client/c/error"), std::string(7998, 'e'));
}

TEST_F(UntrustedText, SecretsInUrlsAreNeverStoredAndTheClientStillAuthenticates) {
  MlflowConfig config;
  config.tracking_uri = "http://alice:s%40cret-pw@127.0.0.1:1/";
  auto fake = std::make_unique<FakeMlflow>();
  FakeMlflow* f = fake.get();
  MlflowClient client(config, std::move(fake), [](double) {});
  EXPECT_EQ(client.config().tracking_uri, "http://127.0.0.1:1");
  Journal j(path_);
  TrackingOptions options;
  options.job_params = {{"tracking.uri", "http://alice:s%40cret-pw@127.0.0.1:1"},
                        {"versioning.remote", "https://models.example/repo?token=tok-secret&x=1"}};
  options.job_tags = {{"mlflow.source.name", "fedtrack run https://bob:hunter2@example/job.yaml"}};
  TrackingListener listener(j, &client, options);
  listener.on_job_start({"job-1", "demo", 1});
  listener.on_job_end({JobStatus::kFailed, "push to https://bob:hunter2@git.example/x.git failed", 0, {}});
  ASSERT_EQ(f->runs.size(), 2u);  // the job's run and round 1's, made ahead and ended FAILED with it
  // Basic credentials from the URI's userinfo, percent-decoded.
  const auto& headers = f->requests.front().headers;
  EXPECT_NE(std::find(headers.begin(), headers.end(),
                      std::make_pair(std::string("Authorization"), std::string("Basic YWxpY2U6c0BjcmV0LXB3"))),
            headers.end());
  for (const auto& r : f->requests) {
    EXPECT_EQ(r.url.find("cret"), std::string::npos) << r.url;
    EXPECT_EQ(r.body.find("cret-pw"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("tok-secret"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos) << r.body;
  }
  for (const auto& op : j.ops_for_run("job-1")) {
    EXPECT_EQ(op.payload.find("cret-pw"), std::string::npos) << op.payload;
    EXPECT_EQ(op.payload.find("tok-secret"), std::string::npos) << op.payload;
    EXPECT_EQ(op.payload.find("hunter2"), std::string::npos) << op.payload;
  }
  EXPECT_EQ(j.run("job-1")->tracking_uri, "http://127.0.0.1:1");
}

TEST_F(UntrustedText, AServerErrorNeverQuotesTheCredentials) {
  struct Fails : HttpTransport {
    HttpResponse send(const HttpRequest&) override {
      return {400, R"({"error_code": "BAD_REQUEST", "message": "see http://u:leaked@proxy/x"})", {}};
    }
  };
  MlflowConfig config;
  config.tracking_uri = "http://u:pw-in-uri@127.0.0.1:1";
  MlflowClient client(config, std::make_unique<Fails>(), [](double) {});
  try {
    client.get_experiment_by_name("x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("pw-in-uri"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("leaked"), std::string::npos) << e.what();
  }
}

// --- corrupt journal payloads ----------------------------------------------------

TEST_F(UntrustedText, ACorruptPayloadIsCorruptionNamingTheJournalAndTheWrite) {
  for (const auto& [kind, payload] : std::vector<std::pair<std::string, std::string>>{
           {"batch", "{not json"},
           {"batch", R"({"metrics": [["k", {"x": 1}, 1, 1]]})"},
           {"batch", R"({"metrics": [["k", 1.0]]})"},
           {"batch", R"({"tags": [[1, 2]]})"},
           {"batch", "[]"},
           {"create", R"({"tags": "x"})"},
           {"create", R"({"start_time": "soon"})"},
           {"end", R"({"end_time": 5})"},
           {"end", R"({"status": 3})"},
           {"rename", "{}"}}) {
    const JournalOp op{42, "job-1", kind, payload, "pending", 0, ""};
    try {
      decode_write(op, "/w/journal.sqlite");
      ADD_FAILURE() << kind << " " << payload;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find("journal /w/journal.sqlite: write 42 (" + kind + " of run job-1) is corrupt"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST_F(UntrustedText, SyncMarksACorruptWriteFailedAndSendsTheRest) {
  Journal j(path_);
  TrackingListener offline(j, nullptr, {});
  offline.on_job_start({"job-1", "demo", 1});
  offline.on_initial_evaluation({{"eval_accuracy", 0.1}});
  j.add_op("job-1", "batch", R"({"metrics": "oops"})");
  j.add_op("job-1", "batch", "\x01garbage");
  offline.on_job_end({JobStatus::kFinished, "", 1, {}});
  const SyncResult r = JournalSync(j, *client_).run();
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.corrupt, 2u);
  EXPECT_EQ(r.rejected, 0u);
  ASSERT_EQ(r.corruption.size(), 2u);
  EXPECT_NE(r.corruption[0].find("journal " + path_ + ": write "), std::string::npos) << r.corruption[0];
  EXPECT_EQ(j.pending_count(), 0u);
  EXPECT_EQ(j.failed_count(), 2u);
  EXPECT_EQ(fake_->runs.at("run1").status, "FINISHED");
  EXPECT_EQ(fake_->runs.at("run1").metrics.size(), 1u);
}

TEST_F(UntrustedText, ARunningJobWarnsAboutACorruptPayloadAndGoesOn) {
  Journal j(path_);
  std::vector<std::string> warnings;
  TrackingOptions options;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  TrackingListener listener(j, client_.get(), options);
  listener.on_job_start({"job-1", "demo", 1});
  j.add_op("job-1", "batch", "{\"metrics\": [");
  EXPECT_NO_THROW(listener.on_initial_evaluation({{"eval_accuracy", 0.1}}));
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.front().find("is corrupt"), std::string::npos) << warnings.front();
  EXPECT_EQ(j.pending_count(), 0u);
}

TEST_F(UntrustedText, AJournalWithOtherTablesIsCorruptionNotAnAbort) {
  { Journal j(path_); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE ops; CREATE TABLE ops (seq INTEGER, run_key TEXT, state TEXT)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Journal j(path_);
  try {
    j.pending_ops();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("journal " + path_ + " does not have fedtrack's tables"), std::string::npos)
        << e.what();
  }
}

// --- orphaned runs ------------------------------------------------------------------

pid_t dead_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

std::string this_host() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

TEST_F(UntrustedText, ARunningJobWhoseProcessIsGoneIsEndedKilledWhenItsNameStartsAgain) {
  Journal j(path_);
  {
    TrackingListener first(j, nullptr, {});
    first.on_job_start({"demo-1", "demo", 3});  // makes round 1's run ahead; killed before the round finished
    TrackingListener live(j, nullptr, {});
    live.on_job_start({"demo-live", "demo", 3});   // owned by this (live) process
    TrackingListener remote(j, nullptr, {});
    remote.on_job_start({"demo-remote", "demo", 3});
    j.set_run_owner("demo-remote", dead_pid(), "another-host", 0);
    TrackingListener other(j, nullptr, {});
    other.on_job_start({"other-1", "other", 3});
    j.set_run_owner("other-1", dead_pid(), this_host(), 0);
    j.set_run_owner("demo-1", dead_pid(), this_host(), 0);
  }
  std::vector<std::string> warnings;
  TrackingOptions options;
  options.warn = [&](const std::string& w) { warnings.push_back(w); };
  TrackingListener next(j, client_.get(), options);
  next.on_job_start({"demo-2", "demo", 3});
  EXPECT_EQ(j.run("demo-1")->status, "KILLED");
  EXPECT_EQ(j.run("demo-1/round-001")->status, "KILLED");
  EXPECT_EQ(j.run("demo-live")->status, "RUNNING");
  EXPECT_EQ(j.run("demo-remote")->status, "RUNNING");
  EXPECT_EQ(j.run("other-1")->status, "RUNNING");  // another job name
  EXPECT_EQ(j.run("demo-2")->owner_pid, getpid());
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.front().find("demo-1"), std::string::npos) << warnings.front();
  // Synced like any other write: the orphan ends KILLED with a note naming its successor.
  std::string orphan_id;
  for (const auto& [id, run] : fake_->runs) {
    if (run.tags.count("fedtrack.run_key") && run.tags.at("fedtrack.run_key") == "demo-1") orphan_id = id;
  }
  ASSERT_FALSE(orphan_id.empty());
  const auto& orphan = fake_->runs.at(orphan_id);
  EXPECT_EQ(orphan.status, "KILLED");
  EXPECT_NE(orphan.tags.at("mlflow.note.content").find("Marked KILLED when job demo-2"), std::string::npos);
}

TEST_F(UntrustedText, AJournalFromBeforeOwnersOpensAndItsRunsCountAsUnowned) {
  {
    Journal j(path_);
    j.add_run({"old-1", "old-1", "job", 0, "old", "Default", "", "RUNNING", 1, 0, "", "", ""});
  }
  // Drop the owner columns, as an older fedtrack wrote the file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "ALTER TABLE runs DROP COLUMN owner_pid; ALTER TABLE runs DROP COLUMN owner_host; "
                         "ALTER TABLE runs DROP COLUMN owner_start;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Journal j(path_);
  EXPECT_EQ(j.run("old-1")->owner_pid, 0);
  TrackingListener next(j, nullptr, {});
  next.on_job_start({"old-2", "old", 1});
  EXPECT_EQ(j.run("old-1")->status, "KILLED");
}

}  // namespace
}  // namespace fedtrack
