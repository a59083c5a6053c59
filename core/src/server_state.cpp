#include "fedtrack/core/server_state.h"

#include <sqlite3.h>

#include <cstdio>
#include <filesystem>

#include "fedtrack/core/error.h"
#include "fedtrack/core/state_record.h"
#include "fedtrack/core/wire.h"

namespace fedtrack {
namespace {

std::string encode_metrics(const Metrics& metrics) {
  StateRecord r;
  for (const auto& [k, v] : metrics) r[k] = encode_f64(v);
  return encode_state(r);
}

Metrics decode_metrics(const std::string& bytes) {
  Metrics m;
  for (const auto& [k, v] : decode_state(bytes)) m[k] = decode_f64(v);
  return m;
}

std::string round_key(int round) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "round/%06d", round);
  return buf;
}

std::string encode_u64(std::uint64_t v) { return std::to_string(v); }

std::uint64_t decode_u64(const std::string& s) { return std::stoull(s); }

}  // namespace

std::string encode_round_summary(const RoundSummary& s) {
  StateRecord r = {{"round", std::to_string(s.round)},
                   {"total_rounds", std::to_string(s.total_rounds)},
                   {"metrics", encode_metrics(s.metrics)},
                   {"fit_config", encode_config(s.fit_config)},
                   {"bytes_down", encode_u64(s.bytes_down)},
                   {"bytes_up", encode_u64(s.bytes_up)},
                   {"fit_seconds", encode_f64(s.fit_seconds)},
                   {"aggregate_seconds", encode_f64(s.aggregate_seconds)},
                   {"evaluate_seconds", encode_f64(s.evaluate_seconds)},
                   {"round_seconds", encode_f64(s.round_seconds)}};
  for (std::size_t i = 0; i < s.clients.size(); ++i) {
    const ClientRoundStat& c = s.clients[i];
    char key[32];
    std::snprintf(key, sizeof key, "client/%06zu", i);
    r[key] = encode_state({{"id", c.client_id},
                           {"ok", c.ok ? "1" : "0"},
                           {"error", c.error},
                           {"num_examples", std::to_string(c.num_examples)},
                           {"fit_metrics", encode_metrics(c.fit_metrics)},
                           {"evaluate_metrics", encode_metrics(c.evaluate_metrics)},
                           {"data_fingerprint", c.data_fingerprint},
                           {"bytes_down", encode_u64(c.bytes_down)},
                           {"bytes_up", encode_u64(c.bytes_up)},
                           {"fit_seconds", encode_f64(c.fit_seconds)}});
  }
  return encode_state(r);
}

RoundSummary decode_round_summary(std::string_view bytes) {
  const StateRecord r = decode_state(bytes);
  RoundSummary s;
  s.round = std::stoi(state_at(r, "round"));
  s.total_rounds = std::stoi(state_at(r, "total_rounds"));
  s.metrics = decode_metrics(state_at(r, "metrics"));
  s.fit_config = decode_config(state_at(r, "fit_config"));
  s.bytes_down = decode_u64(state_at(r, "bytes_down"));
  s.bytes_up = decode_u64(state_at(r, "bytes_up"));
  s.fit_seconds = decode_f64(state_at(r, "fit_seconds"));
  s.aggregate_seconds = decode_f64(state_at(r, "aggregate_seconds"));
  s.evaluate_seconds = decode_f64(state_at(r, "evaluate_seconds"));
  s.round_seconds = decode_f64(state_at(r, "round_seconds"));
  for (const auto& [key, value] : unnest(r, "client/")) {
    const StateRecord c = decode_state(value);
    ClientRoundStat stat;
    stat.client_id = state_at(c, "id");
    stat.ok = state_at(c, "ok") == "1";
    stat.error = state_at(c, "error");
    stat.num_examples = std::stoll(state_at(c, "num_examples"));
    stat.fit_metrics = decode_metrics(state_at(c, "fit_metrics"));
    stat.evaluate_metrics = decode_metrics(state_at(c, "evaluate_metrics"));
    stat.data_fingerprint = state_at(c, "data_fingerprint");
    stat.bytes_down = decode_u64(state_at(c, "bytes_down"));
    stat.bytes_up = decode_u64(state_at(c, "bytes_up"));
    stat.fit_seconds = decode_f64(state_at(c, "fit_seconds"));
    s.clients.push_back(std::move(stat));
  }
  return s;
}

ServerStateFile::ServerStateFile(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL)");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

ServerStateFile::~ServerStateFile() { sqlite3_close(db_); }

void ServerStateFile::exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string why = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
}

std::optional<SavedState> ServerStateFile::load() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM state", -1, &stmt, nullptr) != SQLITE_OK) {
    throw Error::corruption("state file " + path_ + ": " + sqlite3_errmsg(db_));
  }
  StateRecord all;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto* key = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const auto* value = static_cast<const char*>(sqlite3_column_blob(stmt, 1));
    all[key ? key : ""] = std::string(value ? value : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) throw Error::corruption("state file " + path_ + ": " + sqlite3_errmsg(db_));
  if (all.empty()) return std::nullopt;
  try {
    SavedState s;
    s.job_id = state_at(all, "job_id");
    s.job_name = state_at(all, "job_name");
    s.job_digest = state_at(all, "job_digest");
    s.total_rounds = std::stoi(state_at(all, "total_rounds"));
    s.completed_round = std::stoi(state_at(all, "completed_round"));
    s.finished = state_at(all, "finished") == "1";
    s.model = state_at(all, "model");
    s.strategy_state = state_at(all, "strategy_state");
    s.sampler_state = state_at(all, "sampler_state");
    if (auto it = all.find("initial"); it != all.end()) s.initial = decode_metrics(it->second);
    for (int r = 1; r <= s.completed_round; ++r) s.rounds.emplace_back(r, decode_metrics(state_at(all, round_key(r))));
    if (auto it = all.find("last_summary"); it != all.end()) s.last_summary = it->second;
    if (auto it = all.find("recorded"); it != all.end()) s.recorded = it->second == "1";
    return s;
  } catch (const Error& e) {
    throw Error::corruption("state file " + path_ + ": " + e.what());
  } catch (const std::logic_error& e) {
    throw Error::corruption("state file " + path_ + ": unreadable number (" + e.what() + ")");
  }
}

void ServerStateFile::save(const SavedState& s) {
  StateRecord all = {{"job_id", s.job_id},
                     {"job_name", s.job_name},
                     {"job_digest", s.job_digest},
                     {"total_rounds", std::to_string(s.total_rounds)},
                     {"completed_round", std::to_string(s.completed_round)},
                     {"finished", s.finished ? "1" : "0"},
                     {"model", s.model},
                     {"strategy_state", s.strategy_state},
                     {"sampler_state", s.sampler_state}};
  if (s.initial) all["initial"] = encode_metrics(*s.initial);
  if (!s.last_summary.empty()) all["last_summary"] = s.last_summary;
  all["recorded"] = s.recorded ? "1" : "0";
  for (const auto& [round, metrics] : s.rounds) all[round_key(round)] = encode_metrics(metrics);
  exec("BEGIN IMMEDIATE");
  exec("DELETE FROM state");
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT INTO state (key, value) VALUES (?, ?)", -1, &stmt, nullptr) != SQLITE_OK) {
    exec("ROLLBACK");
    throw Error::unavailable("state file " + path_ + ": " + sqlite3_errmsg(db_));
  }
  for (const auto& [k, v] : all) {
    sqlite3_reset(stmt);
    sqlite3_bind_text(stmt, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    sqlite3_bind_blob64(stmt, 2, v.data(), v.size(), SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      const std::string why = sqlite3_errmsg(db_);
      sqlite3_finalize(stmt);
      exec("ROLLBACK");
      throw Error::unavailable("state file " + path_ + ": " + why);
    }
  }
  sqlite3_finalize(stmt);
  exec("COMMIT");
}

void ServerStateFile::mark_recorded() { exec("UPDATE state SET value = '1' WHERE key = 'recorded'"); }

void ServerStateFile::mark_finished() { exec("UPDATE state SET value = '1' WHERE key = 'finished'"); }

}  // namespace fedtrack
