// Sending a journal's pending writes to an MLflow server, in order, exactly
// once.
//
// A run is created only if the journal has no server run id for it, and
// exactly once (MlflowClient::create_run_once with its `fedtrack.run_key`
// tag): a create is never resent blindly; if an earlier attempt may have
// created it without the answer arriving, the run is first looked up by
// that tag, and extra runs with the same key are ended and deleted (said in
// SyncResult::notes). After such an uncertain create a "verify" check is
// journalled: the next sync (the job's next event, the next job, or
// `fedtrack sync`) looks the key up once more, keeping the run the journal
// uses, in case a create reached the server after the lookup. Checks are
// not writes: Journal::pending_count leaves them out. Batches carry their original timestamps and MLflow ignores a metric
// it already has, so replaying one is harmless; so is replaying dataset
// inputs (MLflow keeps a run's input once per dataset name and digest) and
// an artifact (a PUT of the same bytes to the same path; the run's artifact
// location comes from its create, or runs/get in a later pass). A create
// made for an experiment id (MLFLOW_EXPERIMENT_ID) goes there, never to an
// experiment looked up or created by name. Each write is marked done
// only after the server accepted it.
//
// A write whose payload is corrupt (bad JSON, wrong shape) is marked failed
// with the reason and counted in `corrupt`; the other writes go on. A run
// recorded under another tracking URI is sent here only if this server has
// that very run (the same server behind another address).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

struct SyncResult {
  std::size_t sent = 0;       // writes accepted by the server now
  std::size_t pending = 0;    // still waiting (server away, deadline reached)
  std::size_t rejected = 0;   // refused by the server for good (bad value); kept as "failed"
  bool stopped = false;       // stopped early: the server is away or refused us
  std::string stop_reason;    // why, when stopped
  ErrorCode stop_code = ErrorCode::kUnavailable;
  std::size_t corrupt = 0;               // writes whose payload could not be decoded; kept as "failed"
  std::vector<std::string> corruption;   // why, one line per such write (journal file and seq)
  std::vector<std::string> notes;        // duplicate runs removed, one line each
};

class JournalSync {
 public:
  // Both borrowed; must outlive this object.
  JournalSync(Journal& journal, MlflowClient& client);

  // Sends pending writes in order until done, the server is unreachable or
  // refuses our credentials (stops, leaves the rest pending), or the client's
  // deadline passes. A write the server rejects as invalid is marked failed
  // and the rest go on.
  SyncResult run();

 private:
  void send(const JournalOp& op);
  // False (and `result` says why) when `run` lives on another server.
  bool same_server(const JournalRun& run, SyncResult& result);
  void note_duplicates(const std::string& run_key, const CreatedRun& run, const std::string& rule);
  std::string experiment_id(const std::string& name);

  Journal& journal_;
  MlflowClient& client_;
  std::map<std::string, std::string> experiments_;  // name -> id
  std::map<std::string, std::string> artifact_uris_;  // run id -> artifact_uri (from its create, else runs/get)
  std::vector<std::string> notes_;
};

}  // namespace fedtrack
