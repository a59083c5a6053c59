#include "server_state.h"

#include <sqlite3.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/state_record.h"
#include "wire.h"

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

// Decimal integers as written by std::to_string, nothing else (no sign for
// unsigned, no spaces, no trailing bytes): Error(kCorruption) naming `what`.
template <typename T>
T parse_decimal(const std::string& s, const std::string& what) {
  T v{};
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || ptr != end) throw Error::corruption("'" + what + "' is not a number");
  return v;
}

std::uint64_t decode_u64(const std::string& s, const std::string& what) { return parse_decimal<std::uint64_t>(s, what); }
int decode_int(const std::string& s, const std::string& what) { return parse_decimal<int>(s, what); }

bool decode_flag(const StateRecord& all, const std::string& key, bool absent) {
  auto it = all.find(key);
  if (it == all.end()) return absent;
  if (it->second != "0" && it->second != "1") throw Error::corruption("'" + key + "' is neither 0 nor 1");
  return it->second == "1";
}

// The checksum covers every entry; the two flags that change without a full
// save (recorded, finished) are mixed in on top of the digest of the rest,
// so marking them does not need the model bytes again.
constexpr const char* kChecksumKey = "checksum";
constexpr const char* kChecksumScheme = "sha256-v1:";

// SHA-256 over every entry but the checksum and the flags, each as
// (u64 length, key, u64 length, value) in key order; streamed, so the model
// bytes are not copied.
std::string body_digest(const StateRecord& all) {
  Sha256 sha;
  const auto put = [&sha](std::string_view bytes) {
    const std::uint64_t n = bytes.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    sha.update(len, sizeof len);
    sha.update(bytes);
  };
  for (const auto& [key, value] : all) {
    if (key == kChecksumKey || key == "recorded" || key == "finished") continue;
    put(key);
    put(value);
  }
  return sha.hex();
}

std::string checksum_of(const std::string& body, bool recorded, bool finished) {
  return kChecksumScheme +
         sha256_hex(body + "\nrecorded=" + (recorded ? "1" : "0") + "\nfinished=" + (finished ? "1" : "0"));
}

RoundSummary decode_round_summary_fields(std::string_view bytes);

int sqlite_primary(int rc) { return rc & 0xff; }
bool sqlite_damaged(int rc) { return sqlite_primary(rc) == SQLITE_CORRUPT || sqlite_primary(rc) == SQLITE_NOTADB; }

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
  try {
    return decode_round_summary_fields(bytes);
  } catch (const Error& e) {
    throw Error::corruption(std::string("round summary: ") + e.what());
  } catch (const std::exception& e) {
    throw Error::corruption(std::string("round summary: unreadable (") + e.what() + ")");
  }
}

namespace {

RoundSummary decode_round_summary_fields(std::string_view bytes) {
  const StateRecord r = decode_state(bytes);
  RoundSummary s;
  s.round = decode_int(state_at(r, "round"), "round");
  s.total_rounds = decode_int(state_at(r, "total_rounds"), "total_rounds");
  s.metrics = decode_metrics(state_at(r, "metrics"));
  s.fit_config = decode_config(state_at(r, "fit_config"));
  s.bytes_down = decode_u64(state_at(r, "bytes_down"), "bytes_down");
  s.bytes_up = decode_u64(state_at(r, "bytes_up"), "bytes_up");
  s.fit_seconds = decode_f64(state_at(r, "fit_seconds"));
  s.aggregate_seconds = decode_f64(state_at(r, "aggregate_seconds"));
  s.evaluate_seconds = decode_f64(state_at(r, "evaluate_seconds"));
  s.round_seconds = decode_f64(state_at(r, "round_seconds"));
  for (const auto& [key, value] : unnest(r, "client/")) {
    const StateRecord c = decode_state(value);
    ClientRoundStat stat;
    stat.client_id = state_at(c, "id");
    state_at(c, "ok");  // required
    stat.ok = decode_flag(c, "ok", false);
    stat.error = state_at(c, "error");
    stat.num_examples = parse_decimal<std::int64_t>(state_at(c, "num_examples"), "num_examples");
    stat.fit_metrics = decode_metrics(state_at(c, "fit_metrics"));
    stat.evaluate_metrics = decode_metrics(state_at(c, "evaluate_metrics"));
    stat.data_fingerprint = state_at(c, "data_fingerprint");
    stat.bytes_down = decode_u64(state_at(c, "bytes_down"), "bytes_down");
    stat.bytes_up = decode_u64(state_at(c, "bytes_up"), "bytes_up");
    stat.fit_seconds = decode_f64(state_at(c, "fit_seconds"));
    s.clients.push_back(std::move(stat));
  }
  return s;
}

}  // namespace

ServerStateFile::ServerStateFile(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  const bool existed = std::filesystem::exists(p, ec) && std::filesystem::file_size(p, ec) > 0 && !ec;
  if (std::filesystem::exists(p) && !std::filesystem::is_regular_file(p)) {
    throw Error::corruption("state file " + path_ + " is not a regular file; move it aside and start the job again "
                            "without --resume");
  }
  if (existed) check_header();
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec("PRAGMA synchronous=FULL");
    if (existed) check_schema();
    exec("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL)");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

ServerStateFile::~ServerStateFile() { sqlite3_close(db_); }

Error ServerStateFile::damaged(const std::string& what) const {
  return Error::corruption("state file " + path_ + " is corrupt: " + what +
                           ". Move it aside and start the job again without --resume; the models of the rounds "
                           "already committed stay in the model repository (fedtrack history, fedtrack restore --rev)");
}

void ServerStateFile::check_header() const {
  // What SQLite would take without complaint but then refuse to write (a
  // file format version above 2 in bytes 18-19): a damaged header.
  std::ifstream in(path_, std::ios::binary);
  char header[100] = {};
  in.read(header, sizeof header);
  if (in.gcount() < static_cast<std::streamsize>(sizeof header) ||
      std::string(header, 16) != std::string("SQLite format 3\0", 16)) {
    throw damaged("not an SQLite database (bad header)");
  }
  for (int at : {18, 19}) {
    if (header[at] != 1 && header[at] != 2) {
      throw damaged("not a readable SQLite database (file format version " + std::to_string(header[at]) +
                    " at header byte " + std::to_string(at) + ")");
    }
  }
}

void ServerStateFile::check_schema() {
  // An existing file must hold exactly our one table with its two columns:
  // anything else (another SQLite database, a damaged header) is refused
  // before CREATE TABLE could add a table to it.
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, "SELECT type, name, sql FROM sqlite_master", -1, &stmt, nullptr);
  std::set<std::string> objects;
  std::string table_sql;
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const auto* type = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
      const auto* sql = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 2));
      const std::string n = name ? name : "";
      objects.insert(std::string(type ? type : "") + " " + n);
      if (n == "state") table_sql = sql ? sql : "";
    }
  }
  const std::string why = sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    if (sqlite_damaged(rc) || sqlite_primary(rc) == SQLITE_ERROR) throw damaged("not a readable SQLite database (" + why + ")");
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
  const std::set<std::string> expected = {"table state", "index sqlite_autoindex_state_1"};
  if (objects != expected || table_sql != "CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB NOT NULL)") {
    std::string found;
    for (const auto& o : objects) found += (found.empty() ? "" : ", ") + o;
    throw damaged("not a fedtrack state file (its schema holds " + (found.empty() ? std::string("nothing") : found) +
                  ")");
  }
}

void ServerStateFile::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    const std::string why = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (sqlite_damaged(rc)) throw damaged("not a readable SQLite database (" + why + ")");
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
}

std::optional<SavedState> ServerStateFile::load() {
  body_digest_.clear();
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM state", -1, &stmt, nullptr) != SQLITE_OK) {
    throw damaged(sqlite3_errmsg(db_));
  }
  StateRecord all;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto* key = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const auto* value = static_cast<const char*>(sqlite3_column_blob(stmt, 1));
    const std::string k(key ? key : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    if (!all.emplace(k, std::string(value ? value : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1))))
             .second) {
      sqlite3_finalize(stmt);
      throw damaged("key '" + k + "' appears twice");
    }
  }
  const std::string why = sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    if (sqlite_damaged(rc)) throw damaged("not a readable SQLite database (" + why + ")");
    throw Error::unavailable("state file " + path_ + ": " + why);
  }
  if (all.empty()) return std::nullopt;
  // The round as the file tells it, only to say which resume point is lost.
  std::string round = "?";
  if (auto it = all.find("completed_round"); it != all.end() && it->second.size() <= 9) round = it->second;
  auto checksum = all.find(kChecksumKey);
  if (checksum == all.end()) {
    throw damaged("it has no checksum (written by a fedtrack before 0.2, or damaged), so its resume point of round " +
                  round + " cannot be verified");
  }
  try {
    const std::string body = body_digest(all);
    const bool recorded = decode_flag(all, "recorded", true);
    const bool finished = decode_flag(all, "finished", false);
    if (checksum->second != checksum_of(body, recorded, finished)) {
      throw damaged("round " + round + " checksum mismatch (its contents are not what fedtrack saved)");
    }
    SavedState s;
    s.job_id = state_at(all, "job_id");
    s.job_name = state_at(all, "job_name");
    s.job_digest = state_at(all, "job_digest");
    s.total_rounds = decode_int(state_at(all, "total_rounds"), "total_rounds");
    s.completed_round = decode_int(state_at(all, "completed_round"), "completed_round");
    if (s.completed_round < 0 || s.total_rounds < 1 || s.completed_round > s.total_rounds) {
      throw Error::corruption("round " + std::to_string(s.completed_round) + " of " + std::to_string(s.total_rounds));
    }
    s.finished = finished;
    s.model = state_at(all, "model");
    s.strategy_state = state_at(all, "strategy_state");
    s.sampler_state = state_at(all, "sampler_state");
    if (auto it = all.find("initial"); it != all.end()) s.initial = decode_metrics(it->second);
    for (int r = 1; r <= s.completed_round; ++r) s.rounds.emplace_back(r, decode_metrics(state_at(all, round_key(r))));
    if (auto it = all.find("last_summary"); it != all.end()) s.last_summary = it->second;
    s.recorded = recorded;
    body_digest_ = body;
    recorded_ = recorded;
    finished_ = finished;
    return s;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kCorruption && std::string(e.what()).rfind("state file ", 0) == 0) throw;
    throw damaged(e.what());
  } catch (const std::exception& e) {
    throw damaged(std::string("unreadable (") + e.what() + ")");
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
  const std::string body = body_digest(all);
  all[kChecksumKey] = checksum_of(body, s.recorded, s.finished);
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
  body_digest_ = body;
  recorded_ = s.recorded;
  finished_ = s.finished;
}

void ServerStateFile::set_flags(bool recorded, bool finished) {
  if (body_digest_.empty()) return;  // nothing saved or loaded through this object
  const std::string sum = checksum_of(body_digest_, recorded, finished);
  exec("BEGIN IMMEDIATE");
  exec(std::string("UPDATE state SET value = '") + (recorded ? "1" : "0") + "' WHERE key = 'recorded'");
  exec(std::string("UPDATE state SET value = '") + (finished ? "1" : "0") + "' WHERE key = 'finished'");
  exec("UPDATE state SET value = '" + sum + "' WHERE key = 'checksum'");
  exec("COMMIT");
  recorded_ = recorded;
  finished_ = finished;
}

void ServerStateFile::mark_recorded() { set_flags(true, finished_); }

void ServerStateFile::mark_finished() { set_flags(recorded_, true); }

}  // namespace fedtrack
