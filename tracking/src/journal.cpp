#include "fedtrack/tracking/journal.h"

#include <sqlite3.h>

#include <filesystem>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/text.h"
#include "sqlite_statement.h"

namespace fedtrack {
namespace {

constexpr const char* kRunColumns =
    "run_key, job_id, kind, round, run_name, experiment, parent_key, status, created_ms, ended_ms, "
    "tracking_uri, experiment_id, run_id, owner_pid, owner_host, owner_start";

JournalRun read_run(const Statement& s) {
  JournalRun r;
  r.run_key = s.text(0);
  r.job_id = s.text(1);
  r.kind = s.text(2);
  r.round = static_cast<int>(s.integer(3));
  r.run_name = s.text(4);
  r.experiment = s.text(5);
  r.parent_key = s.text(6);
  r.status = s.text(7);
  r.created_ms = s.integer(8);
  r.ended_ms = s.integer(9);
  r.tracking_uri = s.text(10);
  r.experiment_id = s.text(11);
  r.run_id = s.text(12);
  r.owner_pid = s.integer(13);
  r.owner_host = s.text(14);
  r.owner_start = s.integer(15);
  return r;
}

constexpr const char* kOpColumns = "seq, run_key, op, payload, state, attempts, last_error";

JournalOp read_op(const Statement& s) {
  return {s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), static_cast<int>(s.integer(5)), s.text(6)};
}

}  // namespace

Journal::Journal(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  // SQLite would block on a FIFO and fail late on a directory: refuse them here.
  std::error_code exists_ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(p, exists_ec))) check_regular_file(path_);
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::unavailable("cannot open journal " + path_ + ": " + message);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec(
        "CREATE TABLE IF NOT EXISTS runs ("
        " run_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, kind TEXT NOT NULL, round INTEGER NOT NULL,"
        " run_name TEXT NOT NULL, experiment TEXT NOT NULL, parent_key TEXT NOT NULL,"
        " status TEXT NOT NULL, created_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL DEFAULT 0,"
        " tracking_uri TEXT NOT NULL DEFAULT '', experiment_id TEXT NOT NULL DEFAULT '',"
        " run_id TEXT NOT NULL DEFAULT '', owner_pid INTEGER NOT NULL DEFAULT 0,"
        " owner_host TEXT NOT NULL DEFAULT '', owner_start INTEGER NOT NULL DEFAULT 0)");
    exec(
        "CREATE TABLE IF NOT EXISTS ops ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, run_key TEXT NOT NULL, op TEXT NOT NULL,"
        " payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
        " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '')");
    exec("CREATE INDEX IF NOT EXISTS ops_state ON ops(state, seq)");
    create_model_tables();
    // Journals from before the owner columns: add them (once, under the
    // write lock, checking again there: another process may have).
    const auto has_owner = [this] {
      Statement columns(db_, "PRAGMA table_info(runs)", path_);
      bool found = false;
      while (columns.step()) found = found || columns.text(1) == "owner_pid";
      return found;
    };
    if (!has_owner()) {
      exec("BEGIN IMMEDIATE");
      if (!has_owner()) {
        exec("ALTER TABLE runs ADD COLUMN owner_pid INTEGER NOT NULL DEFAULT 0");
        exec("ALTER TABLE runs ADD COLUMN owner_host TEXT NOT NULL DEFAULT ''");
        exec("ALTER TABLE runs ADD COLUMN owner_start INTEGER NOT NULL DEFAULT 0");
      }
      exec("COMMIT");
    }
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::corruption("journal " + path_ + " is not a fedtrack journal: " + e.what());
  }
}

Journal::~Journal() { sqlite3_close(db_); }

void Journal::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    throw Error::unavailable("journal " + path_ + ": " + text);
  }
}

void Journal::transaction(const std::function<void()>& body) {
  if (transaction_depth_ > 0) {  // nested: part of the outer transaction
    body();
    return;
  }
  exec("BEGIN IMMEDIATE");
  ++transaction_depth_;
  try {
    body();
    --transaction_depth_;
    exec("COMMIT");
  } catch (...) {
    transaction_depth_ = 0;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Journal::add_run(const JournalRun& r) {
  Statement(db_,
            std::string("INSERT OR IGNORE INTO runs (") + kRunColumns +
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            path_)
      .bind(1, r.run_key).bind(2, r.job_id).bind(3, r.kind).bind(4, std::int64_t{r.round})
      .bind(5, r.run_name).bind(6, r.experiment).bind(7, r.parent_key).bind(8, r.status)
      .bind(9, r.created_ms).bind(10, r.ended_ms).bind(11, r.tracking_uri).bind(12, r.experiment_id)
      .bind(13, r.run_id).bind(14, r.owner_pid).bind(15, r.owner_host).bind(16, r.owner_start)
      .step();
}

void Journal::add_op(const std::string& run_key, const std::string& op, const std::string& payload) {
  Statement(db_, "INSERT INTO ops (run_key, op, payload) VALUES (?1, ?2, ?3)", path_)
      .bind(1, run_key).bind(2, op).bind(3, payload)
      .step();
}

void Journal::set_run_status(const std::string& run_key, const std::string& status, std::int64_t ended_ms) {
  Statement(db_, "UPDATE runs SET status = ?2, ended_ms = ?3 WHERE run_key = ?1", path_)
      .bind(1, run_key).bind(2, status).bind(3, ended_ms)
      .step();
}

void Journal::set_server_ids(const std::string& run_key, const std::string& tracking_uri,
                             const std::string& experiment_id, const std::string& run_id) {
  Statement(db_, "UPDATE runs SET tracking_uri = ?2, experiment_id = ?3, run_id = ?4 WHERE run_key = ?1", path_)
      .bind(1, run_key).bind(2, tracking_uri).bind(3, experiment_id).bind(4, run_id)
      .step();
}

void Journal::set_run_owner(const std::string& run_key, std::int64_t pid, const std::string& host,
                            std::int64_t start) {
  Statement(db_, "UPDATE runs SET owner_pid = ?2, owner_host = ?3, owner_start = ?4 WHERE run_key = ?1", path_)
      .bind(1, run_key).bind(2, pid).bind(3, host).bind(4, start)
      .step();
}

std::optional<JournalRun> Journal::run(const std::string& run_key) {
  Statement s(db_, std::string("SELECT ") + kRunColumns + " FROM runs WHERE run_key = ?1", path_);
  s.bind(1, run_key);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<JournalRun> Journal::runs() {
  Statement s(db_, std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY created_ms, rowid", path_);
  std::vector<JournalRun> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

std::vector<JournalOp> Journal::ops_for_run(const std::string& run_key) {
  Statement s(db_, std::string("SELECT ") + kOpColumns + " FROM ops WHERE run_key = ?1 ORDER BY seq", path_);
  s.bind(1, run_key);
  std::vector<JournalOp> out;
  while (s.step()) out.push_back(read_op(s));
  return out;
}

std::size_t Journal::pending_count(const std::string& run_key) {
  std::size_t n = 0;
  for (const auto& op : ops_for_run(run_key)) n += op.state == "pending" && op.op != "verify" && op.op != "model_verify";
  return n;
}

std::map<std::string, double> Journal::run_metrics(const std::string& run_key, std::vector<std::string>* corrupt) {
  std::map<std::string, double> out;
  for (const auto& op : ops_for_run(run_key)) {
    if (op.op != "batch") continue;
    try {
      for (const auto& m : decode_write(op, path_).batch.metrics) {
        if (m.key.rfind("client/", 0) == 0) continue;
        out[to_valid_utf8(m.key)] = m.value;
      }
    } catch (const Error& e) {
      if (corrupt) corrupt->push_back(e.what());
    }
  }
  return out;
}

std::vector<JournalOp> Journal::pending_ops() {
  Statement s(db_, std::string("SELECT ") + kOpColumns + " FROM ops WHERE state = 'pending' ORDER BY seq", path_);
  std::vector<JournalOp> out;
  while (s.step()) out.push_back(read_op(s));
  return out;
}

std::size_t Journal::pending_count() {
  Statement s(db_, "SELECT COUNT(*) FROM ops WHERE state = 'pending' AND op NOT IN ('verify', 'model_verify')", path_);
  s.step();
  return static_cast<std::size_t>(s.integer(0));
}

std::size_t Journal::failed_count() {
  Statement s(db_, "SELECT COUNT(*) FROM ops WHERE state = 'failed'", path_);
  s.step();
  return static_cast<std::size_t>(s.integer(0));
}

void Journal::mark_attempt(std::int64_t seq) {
  Statement(db_, "UPDATE ops SET attempts = attempts + 1 WHERE seq = ?1", path_).bind(1, seq).step();
}

void Journal::mark_done(std::int64_t seq) {
  Statement(db_, "UPDATE ops SET state = 'done', last_error = '' WHERE seq = ?1", path_).bind(1, seq).step();
}

void Journal::mark_failed(std::int64_t seq, const std::string& error) {
  Statement(db_, "UPDATE ops SET state = 'failed', last_error = ?2 WHERE seq = ?1", path_)
      .bind(1, seq).bind(2, error)
      .step();
}

}  // namespace fedtrack
