#include "fedtrack/tracking/journal_sync.h"

#include "fedtrack/core/lineage.h"
#include "fedtrack/core/text.h"
#include "logged_model_sync.h"
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
  if (!run) {
    throw Error::corruption("journal " + journal_.path() + ": write " + std::to_string(op.seq) +
                            " names unknown run " + json_text(op.run_key));
  }
  if (is_logged_model_write(op.op)) {  // a logged model's write (logged_models.h)
    for (auto& note : send_logged_model_write(journal_, client_, op, *run)) notes_.push_back(std::move(note));
    return;
  }
  const std::string& uri = client_.config().tracking_uri;
  const JournalWrite write = decode_write(op, journal_.path());
  if (op.op == "create") {
    if (!run->run_id.empty()) return;  // created by an earlier attempt that was recorded
    // A run recorded for an experiment given by id (MLFLOW_EXPERIMENT_ID)
    // goes there; otherwise the experiment named, created if need be.
    const std::string exp = write.experiment_id.empty() ? experiment_id(run->experiment) : write.experiment_id;
    std::vector<KeyValue> tags = write.tags;
    if (!run->parent_key.empty()) {
      const auto parent = journal_.run(run->parent_key);
      if (!parent || parent->run_id.empty()) {
        throw Error::failed_precondition("run " + json_text(op.run_key) + ": its job's run was never created");
      }
      tags.push_back({"mlflow.parentRunId", parent->run_id});
    }
    // Counted before the request: after a crash mid-create, the next
    // attempt looks the run up first.
    const bool may_exist = op.attempts > 0;
    journal_.mark_attempt(op.seq);
    const CreatedRun created = client_.create_run_once(exp, {lineage_tag::kRunKey, op.run_key}, run->run_name,
                                                       write.start_time, tags, write.user, may_exist);
    journal_.set_server_ids(op.run_key, uri, exp, created.info.run_id);
    if (!created.info.artifact_uri.empty()) artifact_uris_[created.info.run_id] = created.info.artifact_uri;
    note_duplicates(op.run_key, created, "earliest start, lowest id");
    // A create that failed without a clear answer may still reach the
    // server after the lookup (a slow gateway): look once more, later.
    if (created.uncertain) journal_.add_op(op.run_key, "verify", "{}");
    return;
  }
  if (op.op == "verify") {
    if (run->run_id.empty()) return;
    if (auto found = client_.find_unique_run(run->experiment_id, {lineage_tag::kRunKey, op.run_key}, run->run_id)) {
      note_duplicates(op.run_key, *found, "the run this journal uses");
    }
    return;
  }
  if (run->run_id.empty()) {
    throw Error::failed_precondition("run " + json_text(op.run_key) + " was never created on the server");
  }
  if (op.op == "batch") {
    client_.log_batch(run->run_id, write.batch);
  } else if (op.op == "inputs") {
    client_.log_inputs(run->run_id, write.datasets);  // the server keeps an input once
  } else if (op.op == "artifact") {
    // A PUT of the same bytes to the same path: resending it is harmless.
    auto it = artifact_uris_.find(run->run_id);
    if (it == artifact_uris_.end()) {
      it = artifact_uris_.emplace(run->run_id, client_.get_run(run->run_id).info.artifact_uri).first;
    }
    client_.upload_artifact(it->second, write.artifact_path, write.artifact_content);
  } else {  // "end"
    client_.update_run(run->run_id, write.status, write.end_time);
  }
}

void JournalSync::note_duplicates(const std::string& run_key, const CreatedRun& run, const std::string& rule) {
  for (const auto& left : run.kept_duplicates) {
    notes_.push_back("tracking: run " + json_text(run_key) + " has a duplicate on the server that could not be removed: " +
                     left + "; fedtrack uses MLflow run " + run.info.run_id);
  }
  if (run.removed_duplicates.empty()) return;
  std::string ids;
  for (const auto& id : run.removed_duplicates) ids += (ids.empty() ? "" : ", ") + id;
  notes_.push_back("tracking: run " + json_text(run_key) + " existed " + std::to_string(run.removed_duplicates.size() + 1) +
                   " times on the server (a create answered with an error or too late had gone through); kept "
                   "MLflow run " + run.info.run_id + " (" + rule + "), ended as KILLED and deleted " + ids);
}

bool JournalSync::same_server(const JournalRun& run, SyncResult& result) {
  const std::string& uri = client_.config().tracking_uri;
  if (run.run_id.empty() || redact_uri(run.tracking_uri) == redact_uri(uri)) return true;
  // Another address; the same server behind it (a gateway, a proxy) when
  // it has this very run: same id, same run key.
  try {
    const MlflowRun there = client_.get_run(run.run_id);
    auto key = there.tags.find(lineage_tag::kRunKey);
    if (key != there.tags.end() && key->second == json_text(run.run_key)) {
      journal_.set_server_ids(run.run_key, uri, run.experiment_id, run.run_id);
      return true;
    }
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound && e.code() != ErrorCode::kInvalidArgument) {
      result.stopped = true;
      result.stop_code = e.code();
      result.stop_reason = e.what();
      return false;
    }
  }
  result.stopped = true;
  result.stop_code = ErrorCode::kFailedPrecondition;
  result.stop_reason = "run " + json_text(run.run_key) + " was created on " + redact_uri(run.tracking_uri) +
                       ", which " + redact_uri(uri) + " does not serve; sync it there (--tracking-uri " +
                       redact_uri(run.tracking_uri) + ")";
  return false;
}

SyncResult JournalSync::run() {
  SyncResult result;
  notes_.clear();
  const auto ops = journal_.pending_ops();
  std::map<std::string, bool> checked;  // run key -> on this server
  for (const auto& op : ops) {
    // The run itself, and for a round its job's run (its parent id must exist here).
    const auto run = journal_.run(op.run_key);
    for (const auto& key : {op.run_key, run ? run->parent_key : std::string()}) {
      if (key.empty() || checked.count(key)) continue;
      checked[key] = true;
      const auto r = key == op.run_key ? run : journal_.run(key);
      if (r && !same_server(*r, result)) {
        result.pending = ops.size();
        return result;
      }
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
        result.stop_reason = redact_secrets(e.what());
        result.stop_code = code;
        result.pending = ops.size() - i;
        result.notes = notes_;
        return result;
      }
      const std::string why = redact_secrets(json_text(e.what()));
      journal_.mark_failed(op.seq, why);
      if (code == ErrorCode::kCorruption) {
        ++result.corrupt;
        result.corruption.push_back(why);
      } else {
        ++result.rejected;
      }
    }
  }
  result.notes = notes_;
  return result;
}

}  // namespace fedtrack
