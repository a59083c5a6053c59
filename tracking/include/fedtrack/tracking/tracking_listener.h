// TrackingListener — makes a federated job one MLflow run and each round a
// nested run, through the journal.
//
// Every write is journalled first (one SQLite transaction per event), then
// the pending writes are sent, for at most `timeout_seconds` per event: when
// the server is away, training goes on and the writes wait in the journal,
// to be sent by the next event that reaches the server, by the next job, or
// by `fedtrack sync`. Without a client (no tracking URI) it only journals.
//
// What lands in MLflow:
//   parent run  name = "<job name>-<short id>" (parent_run_name); params =
//               the job config flattened (train.lr, ...); tags
//               fedtrack.job_id, mlflow.user, mlflow.source.name, and what
//               job_tags add (fedtrack.version, mlflow.source.git.*); the
//               resolved job file as the artifact job.yaml; the test set
//               (context evaluation) and each client's training data
//               (context training, by fingerprint) as dataset inputs; every
//               round's global metrics at step = round, eval_* ones naming
//               the test set (dataset_name / dataset_digest); each client's
//               fit and evaluate metrics at step = round under
//               client/<id>/...; the initial model's evaluation at step 0;
//               status FINISHED / FAILED (error in mlflow.note.content) /
//               KILLED.
//   child runs  "round-003", tag mlflow.parentRunId; the round's metrics
//               (step = round), the fit config as params, per-client metrics
//               under client/<id>/..., tags fedtrack.round, fedtrack.job_id,
//               fedtrack.model_sha256 and client/<id>/data_fingerprint.
// Text is untrusted: every param and tag value is stored without secrets
// (redact_secrets), as valid UTF-8, and cut to MLflow's limit (6000 / 8000)
// on a character boundary; keys go through sanitize_key.
//
// Orphans: a job's run records the process that owns it. When a job starts
// (not resumed), parent runs of the same job name that are still RUNNING in
// the journal but whose process is gone (killed before the first resume
// point, so nothing can resume them) are ended KILLED, with an
// mlflow.note.content naming the job that replaced them; runs owned by a
// live process on this host, or by a process on another host, are left alone.
//
// Called from the server's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fedtrack/core/round_listener.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

class LoggedModels;

struct TrackingOptions {
  std::string experiment = "Default";
  // Set: the runs go to this experiment id (MLFLOW_EXPERIMENT_ID), and
  // `experiment` is only its name for display.
  std::string experiment_id;
  // The resolved job file (secrets removed), uploaded to the parent run as
  // the artifact kJobFileArtifact; "" uploads nothing.
  std::string job_file;
  double timeout_seconds = 5;           // longest any event waits on MLflow
  std::vector<KeyValue> job_params;     // the job config, flattened
  std::vector<KeyValue> job_tags;       // mlflow.source.name, mlflow.source.git.commit, ...
  std::string user;                     // mlflow.user
  std::function<void(const std::string&)> warn;  // one line per problem worth telling
};

// Per event (one journal transaction, then one sync pass): how long
// tracking took and how many requests it sent.
struct TrackingEventStats {
  int round = 0;  // 0 = job start / initial evaluation, -1 = job end
  std::int64_t requests = 0;
  double seconds = 0;
};

struct TrackingReport {
  std::string experiment_id;                 // empty until created on a server
  std::string run_id;
  std::vector<std::string> round_run_ids;    // per round, "" where not yet created
  std::size_t pending = 0;                   // writes still in the journal only
  std::size_t rejected = 0;                  // writes the server refused for good
  std::vector<TrackingEventStats> events;
};

class TrackingListener : public RoundListener {
 public:
  // `client` may be null (journal only). Both are borrowed.
  TrackingListener(Journal& journal, MlflowClient* client, TrackingOptions options);

  void on_job_start(const JobStart& start) override;
  void on_initial_evaluation(const Metrics& metrics) override;
  // Round runs are created one round ahead: round 1's with the parent run
  // (on_job_start), round N+1's in the transaction that records round N,
  // none after the last round. So when round N ends its run id is already
  // known (when MLflow was reachable) and a commit made before record_round
  // can name it; when MLflow was away the id is unknown and the journal
  // resolves the run key later.
  //
  // A resumed job (start.resumed) continues its parent run from the
  // journal and reuses the round run made ahead before the stop (reopened
  // RUNNING if the stop ended it); a re-run round keeps the run it had
  // (record_round records nothing more and checks the model sha256: a
  // different model is Error(kAlreadyExists)).
  //
  // record_round() with no extra tags.
  void on_round(const RoundSummary& summary) override;
  // Ends the parent run, and a round run made ahead that never ran with it
  // (FAILED / KILLED; KILLED when the job itself finished).
  void on_job_end(const JobEnd& end) override;

  // Records a round in ONE journal transaction followed by ONE sync pass:
  // the round run's metrics, params and tags plus `extra_tags` (the
  // lineage of its commit), its end, the global metrics on the parent, and
  // the next round's run. One log-batch per run.
  void record_round(const RoundSummary& summary, const std::vector<KeyValue>& extra_tags);

  // The parent (job) run's server id, "" until it exists there.
  std::string job_run_id();
  // The server run id of a round's run, "" until it exists there.
  std::string round_run_id(int round);

  // Sends pending writes (of this and earlier jobs) for at most the timeout.
  void flush();

  // The rounds' models become MLflow LoggedModels through `models`
  // (borrowed; null: none): journalled in the transaction that records the
  // round, and the final one in the job's end, before its run ends.
  void set_logged_models(LoggedModels* models) { models_ = models; }

  TrackingReport report();

  static std::string round_key(const std::string& job_id, int round);

  // The fedtrack.model_sha256 tag a round's run (round_key) was given in
  // the journal, "" if none.
  std::string recorded_model_sha(const std::string& key);

 private:
  // Ends (KILLED, with a note) the parent runs named like `start` that were
  // left RUNNING by a process that is gone, and their RUNNING rounds; in the
  // caller's transaction. Returns their run keys.
  std::vector<std::string> end_orphans(const JobStart& start);
  // Journals round `round`'s run (create) unless it exists; in the caller's
  // transaction.
  void open_round_run(int round, std::int64_t start_ms);
  void record(int round, const std::function<void()>& writes);
  // The create write of a run, with the experiment id when one is set.
  std::string create_payload(std::int64_t start_ms, const std::vector<KeyValue>& tags) const;
  // Journals, on the parent, the training data of the round's clients not
  // logged before (one "inputs" write, none when there is nothing new); in
  // the caller's transaction.
  void log_new_training_inputs(const RoundSummary& s);
  void warn(const std::string& line);

  Journal& journal_;
  MlflowClient* client_;
  LoggedModels* models_ = nullptr;
  std::unique_ptr<JournalSync> sync_;  // kept across events: it caches experiment ids
  TrackingOptions options_;
  std::string job_id_;
  int rounds_seen_ = 0;
  int total_rounds_ = 0;
  std::size_t rejected_ = 0;
  std::string last_warning_;
  std::vector<TrackingEventStats> events_;
  std::shared_ptr<const ModelCard> model_card_;
  std::shared_ptr<const DatasetInfo> test_set_;
  // (dataset name, digest) of the training inputs journalled on the parent;
  // read back from the journal when a job resumes.
  std::set<std::pair<std::string, std::string>> logged_inputs_;
  bool inputs_loaded_ = false;
};

// Per-client metrics: "client/<client id>/<metric>", on the round's run and
// (fit and evaluate metrics) on the parent.
inline constexpr const char* kClientMetricPrefix = "client/";

// The parent run's artifact holding the resolved job file.
inline constexpr const char* kJobFileArtifact = "job.yaml";

// Milliseconds since the Unix epoch.
std::int64_t now_ms();

}  // namespace fedtrack
