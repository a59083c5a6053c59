#include "logged_model_sync.h"

#include <algorithm>

#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/text.h"
#include "logged_model_rest.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

// A decoded logged-model write.
struct ModelWrite {
  std::string model_key;
  std::vector<KeyValue> tags, params;  // model_create
  std::string path, blob;              // model_upload
  std::int64_t step = 0;               // model_link
  std::vector<Metric> metrics;         // model_metrics
};

std::string text_of(const json& j, const char* key) {
  if (!j.contains(key) || !j.at(key).is_string()) throw std::domain_error(std::string("'") + key + "' is not a string");
  return j.at(key).get<std::string>();
}

std::vector<KeyValue> pairs_of(const json& j, const char* key) {
  std::vector<KeyValue> out;
  if (!j.contains(key)) return out;
  if (!j.at(key).is_array()) throw std::domain_error(std::string("'") + key + "' is not an array");
  for (const auto& kv : j.at(key)) {
    if (!kv.is_array() || kv.size() != 2 || !kv.at(0).is_string() || !kv.at(1).is_string()) {
      throw std::domain_error("expected a [key, value] pair");
    }
    out.push_back({kv.at(0).get<std::string>(), kv.at(1).get<std::string>()});
  }
  return out;
}

ModelWrite decode(const JournalOp& op, const std::string& journal_path) {
  ModelWrite w;
  try {
    const json p = json::parse(op.payload);
    if (!p.is_object()) throw std::domain_error("not a JSON object");
    w.model_key = text_of(p, "model");
    if (op.op == "model_create") {
      w.tags = pairs_of(p, "tags");
      w.params = pairs_of(p, "params");
    } else if (op.op == "model_upload") {
      w.path = text_of(p, "path");
      w.blob = text_of(p, "blob");
    } else if (op.op == "model_link") {
      if (!p.contains("step") || !p.at("step").is_number_integer()) throw std::domain_error("'step' is not an integer");
      w.step = p.at("step").get<std::int64_t>();
    } else if (op.op == "model_metrics") {
      if (!p.contains("metrics") || !p.at("metrics").is_array()) throw std::domain_error("'metrics' is not an array");
      for (const auto& m : p.at("metrics")) {
        if (!m.is_array() || m.size() != 4 || !m.at(0).is_string() || !m.at(2).is_number_integer() ||
            !m.at(3).is_number_integer()) {
          throw std::domain_error("expected a [key, value, timestamp, step] metric");
        }
        w.metrics.push_back({m.at(0).get<std::string>(), decode_metric_value(m.at(1)), m.at(2).get<std::int64_t>(),
                             m.at(3).get<std::int64_t>()});
      }
    }
  } catch (const std::exception& e) {  // nlohmann's errors, the checks above, a metric value's Error
    throw Error::corruption("journal " + journal_path + ": write " + std::to_string(op.seq) + " (" + json_text(op.op) +
                            " of run " + json_text(op.run_key) + ") is corrupt: " + json_text(e.what()));
  }
  return w;
}

// An MLflow search filter on the model's identity tag.
std::string key_filter(const std::string& model_key) {
  const std::string value = json_text(model_key);
  const std::string quoted = value.find('\'') == std::string::npos ? "'" + value + "'" : "\"" + value + "\"";
  return std::string("tags.`") + lineage_tag::kModelKey + "` = " + quoted;
}

// The models on the server carrying `model_key`, the one to keep first:
// `keep` when given and found, else the earliest made (then the lowest id).
std::vector<LoggedModelInfo> find_by_key(MlflowClient& client, const std::string& experiment_id,
                                         const std::string& model_key, const std::string& keep) {
  auto found = search_logged_models(client, {experiment_id}, key_filter(model_key));
  // The server's filter is trusted to narrow, not to decide.
  found.erase(std::remove_if(found.begin(), found.end(),
                             [&](const LoggedModelInfo& m) {
                               auto it = m.tags.find(lineage_tag::kModelKey);
                               return it == m.tags.end() || it->second != json_text(model_key);
                             }),
              found.end());
  std::sort(found.begin(), found.end(), [&](const LoggedModelInfo& a, const LoggedModelInfo& b) {
    if ((a.model_id == keep) != (b.model_id == keep)) return a.model_id == keep;
    if (a.creation_ms != b.creation_ms) return a.creation_ms < b.creation_ms;
    return a.model_id < b.model_id;
  });
  return found;
}

// Deletes every model but the first; a note naming them.
std::vector<std::string> remove_duplicates(MlflowClient& client, const std::string& model_key,
                                           const std::vector<LoggedModelInfo>& found) {
  std::vector<std::string> notes;
  if (found.size() < 2) return notes;
  std::string removed, kept;
  for (std::size_t i = 1; i < found.size(); ++i) {
    try {
      delete_logged_model(client, found[i].model_id);
      removed += (removed.empty() ? "" : ", ") + found[i].model_id;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnavailable) throw;  // try again later, as for any request
      kept += (kept.empty() ? "" : ", ") + found[i].model_id + " (" + e.what() + ")";
    }
  }
  if (!removed.empty()) {
    notes.push_back("tracking: logged model " + json_text(model_key) + " existed " + std::to_string(found.size()) +
                    " times on the server (a create answered with an error or too late had gone through); kept " +
                    found.front().model_id + ", deleted " + removed);
  }
  if (!kept.empty()) {
    notes.push_back("tracking: logged model " + json_text(model_key) +
                    " has a duplicate on the server that could not be deleted: " + kept + "; fedtrack uses " +
                    found.front().model_id);
  }
  return notes;
}

bool upload_failed(Journal& journal, const JournalOp& finalize, const std::string& model_key) {
  for (const auto& op : journal.ops_for_run(finalize.run_key)) {
    if (op.op != "model_upload" || op.state != "failed" || op.seq > finalize.seq) continue;
    try {
      if (json::parse(op.payload).value("model", "") == model_key) return true;
    } catch (const std::exception&) {
      return true;  // a corrupt upload of some model: say not ready rather than ready
    }
  }
  return false;
}

}  // namespace

bool is_logged_model_write(const std::string& op) {
  return op == "model_create" || op == "model_upload" || op == "model_finalize" || op == "model_link" ||
         op == "model_metrics" || op == "model_verify";
}

std::vector<std::string> send_logged_model_write(Journal& journal, MlflowClient& client, const JournalOp& op,
                                                 const JournalRun& job) {
  const ModelWrite w = decode(op, journal.path());
  auto model = journal.model(w.model_key);
  if (!model) {
    throw Error::corruption("journal " + journal.path() + ": write " + std::to_string(op.seq) +
                            " names unknown logged model " + json_text(w.model_key));
  }
  if (job.run_id.empty()) {
    throw Error::failed_precondition("run " + json_text(job.run_key) + " was never created on the server");
  }
  const std::string& uri = client.config().tracking_uri;
  if (op.op == "model_create") {
    if (!model->model_id.empty()) return {};  // created by an earlier attempt that was recorded
    // Counted before the request: after a crash or a lost answer, the next
    // attempt looks the model up first.
    const bool may_exist = op.attempts > 0;
    journal.mark_attempt(op.seq);
    if (may_exist) {
      const auto found = find_by_key(client, job.experiment_id, w.model_key, "");
      if (!found.empty()) {
        journal.set_model_ids(w.model_key, uri, found.front().experiment_id, found.front().model_id,
                              found.front().artifact_uri);
        journal.add_op(op.run_key, "model_verify", dump_json({{"model", json_text(w.model_key)}}));
        return remove_duplicates(client, w.model_key, found);
      }
    }
    std::vector<KeyValue> tags = w.tags;
    if (std::none_of(tags.begin(), tags.end(), [](const KeyValue& t) { return t.key == lineage_tag::kModelKey; })) {
      tags.push_back({lineage_tag::kModelKey, w.model_key});
    }
    const LoggedModelInfo made = create_logged_model(client, job.experiment_id, model->name, job.run_id, tags, w.params);
    journal.set_model_ids(w.model_key, uri, made.experiment_id.empty() ? job.experiment_id : made.experiment_id,
                          made.model_id, made.artifact_uri);
    // An earlier attempt without an answer may still reach the server: look again later.
    if (may_exist) journal.add_op(op.run_key, "model_verify", dump_json({{"model", json_text(w.model_key)}}));
    return {};
  }
  if (model->model_id.empty()) {
    throw Error::failed_precondition("logged model " + json_text(w.model_key) + " was never created on the server");
  }
  if (op.op == "model_verify") {
    return remove_duplicates(client, w.model_key, find_by_key(client, model->experiment_id, w.model_key, model->model_id));
  }
  if (op.op == "model_upload") {
    const auto bytes = journal.blob(w.blob);
    if (!bytes) return {};  // sent before: the bytes are dropped only once the server took them
    if (model->artifact_uri.empty()) {
      const LoggedModelInfo there = get_logged_model(client, model->model_id);
      journal.set_model_ids(w.model_key, model->tracking_uri, model->experiment_id, model->model_id, there.artifact_uri);
      model->artifact_uri = there.artifact_uri;
    }
    client.upload_artifact(model->artifact_uri, w.path, *bytes);
    journal.drop_blob(w.blob);
    return {};
  }
  if (op.op == "model_finalize") {
    finalize_logged_model(client, model->model_id,
                          upload_failed(journal, op, w.model_key) ? "LOGGED_MODEL_UPLOAD_FAILED" : "LOGGED_MODEL_READY");
    return {};
  }
  if (op.op == "model_link") {
    if (op.attempts > 0 && run_outputs_model(client, job.run_id, model->model_id, w.step)) return {};
    journal.mark_attempt(op.seq);
    log_model_output(client, job.run_id, model->model_id, w.step);
    return {};
  }
  // model_metrics
  log_model_metrics(client, job.run_id, model->model_id, w.metrics);
  return {};
}

}  // namespace fedtrack
