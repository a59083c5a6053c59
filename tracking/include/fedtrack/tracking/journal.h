// Journal — the local SQLite record of every tracking write, kept before it
// is sent, so nothing is lost when the MLflow server is away.
//
// Tables: `runs` (one per job and per round: local key, names, experiment,
// and once created on a server its tracking URI, experiment id and run id)
// and `ops` (the writes, in order: create, batch, end), each pending until
// the server accepted it. WAL mode with synchronous=FULL: a committed
// write survives a crash. One Journal per thread; several processes may
// open the same file (SQLite locks; a busy timeout of 10 s applies).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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
};

struct JournalOp {
  std::int64_t seq = 0;
  std::string run_key;
  std::string op;       // "create" | "batch" | "end"
  std::string payload;  // JSON
  std::string state;    // "pending" | "done" | "failed"
  int attempts = 0;
  std::string last_error;
};

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

  std::optional<JournalRun> run(const std::string& run_key);
  std::vector<JournalRun> runs();  // jobs and rounds, oldest first
  std::vector<JournalOp> ops_for_run(const std::string& run_key);
  std::vector<JournalOp> pending_ops();  // in write order
  std::size_t pending_count();
  std::size_t failed_count();

  void mark_attempt(std::int64_t seq);
  void mark_done(std::int64_t seq);
  void mark_failed(std::int64_t seq, const std::string& error);

 private:
  void exec(const std::string& sql);
  std::string path_;
  sqlite3* db_ = nullptr;
  int transaction_depth_ = 0;
};

}  // namespace fedtrack
