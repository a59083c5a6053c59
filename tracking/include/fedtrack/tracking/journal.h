// Journal — the local SQLite record of every tracking write, kept before it
// is sent, so nothing is lost when the MLflow server is away.
//
// Tables: `runs` (one per job and per round: local key, names, experiment,
// and once created on a server its tracking URI, experiment id and run id)
// and `ops` (the writes, in order: create, batch, end), each pending until
// the server accepted it. WAL mode with synchronous=FULL: a committed
// write survives a crash. One Journal per thread; several processes may
// open the same file (SQLite locks; a busy timeout of 10 s applies).
//
// A job's run records the process that owns it (pid, host, process start
// time), so a later job can tell a run whose process is gone (an orphan,
// left RUNNING by a kill) from one still running.
//
// Payloads are untrusted on the way back: decode_write() checks a write's
// JSON and shape and reports anything else as Error(kCorruption) naming the
// journal file and the write's seq, never as a library exception.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include "fedtrack/tracking/mlflow_client.h"

struct sqlite3;

namespace fedtrack {

struct JournalRun {
  std::string run_key;        // "<job_id>" for a job, "<job_id>/round-003" for a round
  std::string job_id;
  std::string kind;           // "job" | "round"
  int round = 0;
  std::string run_name;
  std::string experiment;     // MLflow experiment name
  std::string parent_key;     // the job's key, for rounds
  std::string status = "RUNNING";
  std::int64_t created_ms = 0;
  std::int64_t ended_ms = 0;
  // Filled once the run exists on a server.
  std::string tracking_uri;
  std::string experiment_id;
  std::string run_id;
  // The process that created (or resumed) a job's run; 0 / "" = unknown
  // (journals written before this was recorded).
  std::int64_t owner_pid = 0;
  std::string owner_host{};
  std::int64_t owner_start = 0;  // the process's start time (clock ticks since boot)
};

struct JournalOp {
  std::int64_t seq = 0;
  std::string run_key;
  // "create" | "batch" | "end" | "inputs" (runs/log-inputs) | "artifact" (a
  // file uploaded to the run's artifacts) | "verify" (look for duplicates of
  // an uncertain create), or a logged model's write "model_*" (logged_models.h)
  std::string op;
  std::string payload;  // JSON
  std::string state;    // "pending" | "done" | "failed"
  int attempts = 0;
  std::string last_error;
};

// A logged model (an MLflow 3 LoggedModel made of one round's global model,
// see logged_models.h) as the journal knows it. Its writes are ops of its
// job's run (run_key = the job's key) whose payload names `model_key`.
struct JournalModel {
  std::string model_key;   // "<job_id>/round-003/model"
  std::string job_id;
  int round = 0;
  std::string name;        // the LoggedModel's name
  std::string reason;      // why it was logged: "final" | "best" | "every"
  std::optional<double> score;  // the round's best-model metric, when it has one
  std::int64_t created_ms = 0;
  // Filled once the model exists on a server.
  std::string tracking_uri;
  std::string experiment_id;
  std::string model_id;
  std::string artifact_uri;
};

// A write's payload, decoded: `create` fills tags/start_time/user (and
// experiment_id when the run goes to an experiment named by id), `batch`
// fills batch, `end` fills status/end_time, `inputs` datasets, `artifact`
// artifact_path/artifact_content, `verify` nothing.
struct JournalWrite {
  std::vector<KeyValue> tags;
  std::int64_t start_time = 0;
  std::string user;
  std::string experiment_id;
  std::vector<DatasetInput> datasets;
  std::string artifact_path;
  std::string artifact_content;
  LogBatch batch;
  std::string status;
  std::int64_t end_time = 0;
};

// Error(kCorruption) "journal PATH: write SEQ (OP of run KEY) is corrupt: ..."
// for bad JSON, a wrong shape or an unknown write kind.
JournalWrite decode_write(const JournalOp& op, const std::string& journal_path);

class Journal {
 public:
  // Creates the file and its folder if needed. Error(kUnavailable /
  // kCorruption) naming the path when it cannot be opened or is not a journal.
  explicit Journal(std::string path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return path_; }

  // Runs `body` in one write transaction: all of its writes commit together
  // (one fsync) or none do.
  void transaction(const std::function<void()>& body);

  void add_run(const JournalRun& run);  // ignored if the key exists
  void add_op(const std::string& run_key, const std::string& op, const std::string& payload);
  void set_run_status(const std::string& run_key, const std::string& status, std::int64_t ended_ms);
  void set_server_ids(const std::string& run_key, const std::string& tracking_uri,
                      const std::string& experiment_id, const std::string& run_id);
  void set_run_owner(const std::string& run_key, std::int64_t pid, const std::string& host, std::int64_t start);

  std::optional<JournalRun> run(const std::string& run_key);
  std::vector<JournalRun> runs();  // jobs and rounds, oldest first
  std::vector<JournalOp> ops_for_run(const std::string& run_key);
  std::vector<JournalOp> pending_ops();  // in write order, checks ("verify") included
  std::size_t pending_count();           // writes waiting; checks are not counted
  std::size_t pending_count(const std::string& run_key);  // the same, for one run

  // The global metrics a run's journalled batches carry: the last value of
  // each key (client/... keys left out; keys made valid UTF-8). A write that
  // does not decode is skipped and its Error message appended to `corrupt`
  // (when given), so one bad write never hides the rest.
  std::map<std::string, double> run_metrics(const std::string& run_key, std::vector<std::string>* corrupt = nullptr);
  std::size_t failed_count();

  // --- logged models (journal_models.cpp) ---
  void add_model(const JournalModel& model);  // ignored if the key exists
  std::optional<JournalModel> model(const std::string& model_key);
  std::vector<JournalModel> models(const std::string& job_id);  // by round
  void set_model_ids(const std::string& model_key, const std::string& tracking_uri, const std::string& experiment_id,
                     const std::string& model_id, const std::string& artifact_uri);
  // Bytes a pending upload sends (a checkpoint), kept until it was sent.
  void put_blob(const std::string& key, const std::string& bytes);
  std::optional<std::string> blob(const std::string& key);
  void drop_blob(const std::string& key);

  void mark_attempt(std::int64_t seq);
  void mark_done(std::int64_t seq);
  void mark_failed(std::int64_t seq, const std::string& error);

 private:
  void exec(const std::string& sql);
  void create_model_tables();
  std::string path_;
  sqlite3* db_ = nullptr;
  int transaction_depth_ = 0;
};

}  // namespace fedtrack
