// The journal's logged-model tables: `logged_models` (one row per MLflow 3
// LoggedModel a job logs, and its server ids once created) and `blobs`
// (bytes a pending upload will send, dropped once sent).
#include <sqlite3.h>

#include "fedtrack/tracking/journal.h"
#include "sqlite_statement.h"

namespace fedtrack {
namespace {

constexpr const char* kModelColumns =
    "model_key, job_id, round, name, reason, score, created_ms, tracking_uri, experiment_id, model_id, artifact_uri";

JournalModel read_model(const Statement& s) {
  JournalModel m;
  m.model_key = s.text(0);
  m.job_id = s.text(1);
  m.round = static_cast<int>(s.integer(2));
  m.name = s.text(3);
  m.reason = s.text(4);
  if (!s.is_null(5)) m.score = s.real(5);
  m.created_ms = s.integer(6);
  m.tracking_uri = s.text(7);
  m.experiment_id = s.text(8);
  m.model_id = s.text(9);
  m.artifact_uri = s.text(10);
  return m;
}

}  // namespace

void Journal::create_model_tables() {
  exec(
      "CREATE TABLE IF NOT EXISTS logged_models ("
      " model_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, round INTEGER NOT NULL, name TEXT NOT NULL,"
      " reason TEXT NOT NULL, score REAL, created_ms INTEGER NOT NULL,"
      " tracking_uri TEXT NOT NULL DEFAULT '', experiment_id TEXT NOT NULL DEFAULT '',"
      " model_id TEXT NOT NULL DEFAULT '', artifact_uri TEXT NOT NULL DEFAULT '')");
  exec("CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, bytes BLOB NOT NULL)");
}

void Journal::add_model(const JournalModel& m) {
  Statement s(db_,
              std::string("INSERT OR IGNORE INTO logged_models (") + kModelColumns +
                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
              path_);
  s.bind(1, m.model_key).bind(2, m.job_id).bind(3, std::int64_t{m.round}).bind(4, m.name).bind(5, m.reason);
  if (m.score) {
    s.bind_real(6, *m.score);
  } else {
    s.bind_null(6);
  }
  s.bind(7, m.created_ms).bind(8, m.tracking_uri).bind(9, m.experiment_id).bind(10, m.model_id).bind(11, m.artifact_uri);
  s.step();
}

std::optional<JournalModel> Journal::model(const std::string& model_key) {
  Statement s(db_, std::string("SELECT ") + kModelColumns + " FROM logged_models WHERE model_key = ?1", path_);
  s.bind(1, model_key);
  if (!s.step()) return std::nullopt;
  return read_model(s);
}

std::vector<JournalModel> Journal::models(const std::string& job_id) {
  Statement s(db_, std::string("SELECT ") + kModelColumns + " FROM logged_models WHERE job_id = ?1 ORDER BY round, rowid",
              path_);
  s.bind(1, job_id);
  std::vector<JournalModel> out;
  while (s.step()) out.push_back(read_model(s));
  return out;
}

void Journal::set_model_ids(const std::string& model_key, const std::string& tracking_uri,
                            const std::string& experiment_id, const std::string& model_id,
                            const std::string& artifact_uri) {
  Statement(db_,
            "UPDATE logged_models SET tracking_uri = ?2, experiment_id = ?3, model_id = ?4, artifact_uri = ?5 "
            "WHERE model_key = ?1",
            path_)
      .bind(1, model_key).bind(2, tracking_uri).bind(3, experiment_id).bind(4, model_id).bind(5, artifact_uri)
      .step();
}

void Journal::put_blob(const std::string& key, const std::string& bytes) {
  Statement(db_, "INSERT OR REPLACE INTO blobs (key, bytes) VALUES (?1, ?2)", path_).bind(1, key).bind_blob(2, bytes).step();
}

std::optional<std::string> Journal::blob(const std::string& key) {
  Statement s(db_, "SELECT bytes FROM blobs WHERE key = ?1", path_);
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.blob(0);
}

void Journal::drop_blob(const std::string& key) {
  Statement(db_, "DELETE FROM blobs WHERE key = ?1", path_).bind(1, key).step();
}

}  // namespace fedtrack
