#include "fedtrack/tracking/journal_sync.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "tracking_payload.h"

namespace fedtrack {

JournalSync::JournalSync(Journal& journal, MlflowClient& client) : journal_(journal), client_(client) {}

std::string JournalSync::experiment_id(const std::string& name) {
  auto it = experiments_.find(name);
  if (it != experiments_.end()) return it->second;
  const std::string id = client_.get_or_create_experiment(name);
  experiments_[name] = id;
  return id;
}

void JournalSync::send(const JournalOp& op) {
  const auto run = journal_.run(op.run_key);
  if (!run) throw Error::corruption("journal: write " + std::to_string(op.seq) + " names unknown run " + op.run_key);
  const std::string& uri = client_.config().tracking_uri;
  const nlohmann::json payload = nlohmann::json::parse(op.payload);
  if (op.op == "create") {
    if (!run->run_id.empty()) return;  // created by an earlier attempt that was recorded
    const std::string exp = experiment_id(run->experiment);
    if (op.attempts > 0) {
      // An earlier attempt may have reached the server without its answer reaching us.
      const auto found = client_.search_runs({exp}, "tags.`fedtrack.run_key` = '" + op.run_key + "'");
      if (!found.empty()) {
        journal_.set_server_ids(op.run_key, uri, exp, found.front().info.run_id);
        return;
      }
    }
    std::vector<KeyValue> tags = payload_tags(payload);
    tags.push_back({"fedtrack.run_key", op.run_key});
    if (!run->parent_key.empty()) {
      const auto parent = journal_.run(run->parent_key);
      if (!parent || parent->run_id.empty()) {
        throw Error::failed_precondition("run " + op.run_key + ": its job's run was never created");
      }
      tags.push_back({"mlflow.parentRunId", parent->run_id});
    }
    journal_.mark_attempt(op.seq);
    const RunInfo info = client_.create_run(exp, run->run_name, payload.value("start_time", std::int64_t{0}),
                                            tags, payload.value("user", std::string()));
    journal_.set_server_ids(op.run_key, uri, exp, info.run_id);
    return;
  }
  if (run->run_id.empty()) {
    throw Error::failed_precondition("run " + op.run_key + " was never created on the server");
  }
  if (op.op == "batch") {
    client_.log_batch(run->run_id, payload_batch(payload));
  } else if (op.op == "end") {
    client_.update_run(run->run_id, payload.at("status").get<std::string>(),
                       payload.value("end_time", std::int64_t{0}));
  } else {
    throw Error::corruption("journal: unknown write kind '" + op.op + "'");
  }
}

SyncResult JournalSync::run() {
  SyncResult result;
  const auto ops = journal_.pending_ops();
  const std::string& uri = client_.config().tracking_uri;
  for (const auto& op : ops) {
    const auto run = journal_.run(op.run_key);
    if (run && !run->run_id.empty() && run->tracking_uri != uri) {
      result.stopped = true;
      result.stop_code = ErrorCode::kFailedPrecondition;
      result.stop_reason = "run " + op.run_key + " was created on " + run->tracking_uri +
                           "; sync it there (--tracking-uri " + run->tracking_uri + ")";
      result.pending = ops.size();
      return result;
    }
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const JournalOp& op = ops[i];
    try {
      send(op);
      journal_.mark_done(op.seq);
      ++result.sent;
    } catch (const Error& e) {
      const ErrorCode code = e.code();
      if (code == ErrorCode::kUnavailable || code == ErrorCode::kUnauthenticated ||
          code == ErrorCode::kPermissionDenied) {
        result.stopped = true;
        result.stop_reason = e.what();
        result.stop_code = code;
        result.pending = ops.size() - i;
        return result;
      }
      journal_.mark_failed(op.seq, e.what());
      ++result.rejected;
    }
  }
  return result;
}

}  // namespace fedtrack
