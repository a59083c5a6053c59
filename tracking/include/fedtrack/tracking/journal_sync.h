// Sending a journal's pending writes to an MLflow server, in order, exactly
// once.
//
// A run is created only if the journal has no server run id for it; if an
// earlier attempt may have created it without the answer arriving, the run
// is first looked up by its `fedtrack.run_key` tag, so it is never created
// twice. Batches carry their original timestamps and MLflow ignores a metric
// it already has, so replaying one is harmless. Each write is marked done
// only after the server accepted it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

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
  std::string experiment_id(const std::string& name);

  Journal& journal_;
  MlflowClient& client_;
  std::map<std::string, std::string> experiments_;  // name -> id
};

}  // namespace fedtrack
