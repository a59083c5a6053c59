// ServerStateFile — a job's resume point on disk, so `fedtrack server
// --resume` and `fedtrack run --resume` continue after a crash (even
// SIGKILL) from the last completed round.
//
// One SQLite file (table state(key, value)); save() replaces everything in
// one transaction with synchronous=FULL, so the file always holds either the
// previous round's state or the new one, never a mix. Torch-free: the model
// is stored as its FTPM encoding. Not thread-safe; one writer per file.
//
// Integrity: every entry (model, strategy state, sampler RNG, metrics, round
// summary, round, flags) is covered by a SHA-256 checksum stored beside them
// ("checksum" = "sha256-v1:" + sha256(sha256(body) + flags)); load()
// verifies it before decoding anything. A file that is not SQLite, is
// truncated, has another schema, lacks the checksum (written before it
// existed) or does not match it is Error(kCorruption) naming the file and
// saying what to do.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/round_listener.h"

struct sqlite3;

namespace fedtrack {

struct SavedState {
  std::string job_id;
  std::string job_name;
  std::string job_digest;        // sha256 of the job's canonical keys: a resume must run the same job
  int total_rounds = 0;
  int completed_round = 0;
  bool finished = false;         // the job ended (FINISHED): nothing to resume
  std::string model;             // encode_parameters() of the global model
  std::string strategy_state;    // encode_state(Strategy::save_state())
  std::string sampler_state;     // ClientManager::rng_state()
  std::optional<Metrics> initial;
  std::vector<std::pair<int, Metrics>> rounds;
  // The last completed round's summary (without its model) and whether the
  // listeners (tracking, versioning) have recorded it: a resume replays an
  // unrecorded round to them instead of training it again.
  std::string last_summary;
  bool recorded = true;
};

// A RoundSummary without its model, for the state file.
std::string encode_round_summary(const RoundSummary& summary);
RoundSummary decode_round_summary(std::string_view bytes);

class ServerStateFile {
 public:
  // Opens or creates the file. Error(kUnavailable) when it cannot;
  // Error(kCorruption) when an existing file is not a state file.
  explicit ServerStateFile(std::string path);
  ~ServerStateFile();
  ServerStateFile(const ServerStateFile&) = delete;
  ServerStateFile& operator=(const ServerStateFile&) = delete;

  const std::string& path() const { return path_; }

  // Empty for a new file. Error(kCorruption) for a file that is not one,
  // or whose checksum does not match its contents.
  std::optional<SavedState> load();
  void save(const SavedState& state);
  void mark_recorded();
  void mark_finished();

 private:
  void exec(const std::string& sql);
  void check_header() const;
  void check_schema();
  void set_flags(bool recorded, bool finished);
  Error damaged(const std::string& what) const;
  std::string path_;
  sqlite3* db_ = nullptr;
  std::string body_digest_;  // of the state last saved or loaded ("" = none)
  bool recorded_ = true;
  bool finished_ = false;
};

}  // namespace fedtrack
