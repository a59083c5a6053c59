// The REST calls on MLflow 3 LoggedModels (service.proto: CreateLoggedModel,
// SearchLoggedModels, GetLoggedModel, FinalizeLoggedModel, DeleteLoggedModel,
// LogOutputs, CreateModelVersion with model_id), over MlflowClient::call.
#include "logged_model_rest.h"

#include "fedtrack/core/error.h"
#include "fedtrack/tracking/http.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

std::string text(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return "";
  const json& v = j.at(key);
  return v.is_string() ? v.get<std::string>() : dump_json(v);
}

std::int64_t integer(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return 0;
  const json& v = j.at(key);
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_string()) return std::strtoll(v.get<std::string>().c_str(), nullptr, 10);
  return 0;
}

std::map<std::string, std::string> pairs(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_array()) return out;
  for (const auto& kv : j.at(key)) out[text(kv, "key")] = text(kv, "value");
  return out;
}

json pairs_json(const std::vector<KeyValue>& kvs) {
  json out = json::array();
  for (const auto& kv : kvs) out.push_back({{"key", json_text(kv.key)}, {"value", json_text(kv.value)}});
  return out;
}

// The server's answer is untrusted too: a shape we cannot read is an Error
// naming the request, never a library exception.
json parse(const std::string& body, const std::string& what) {
  try {
    return json::parse(body);
  } catch (const std::exception& e) {
    throw Error::unavailable("MLflow " + what + ": the answer is not JSON: " + json_text(e.what()));
  }
}

}  // namespace

LoggedModelInfo parse_logged_model(const json& model) {
  if (!model.is_object()) throw Error::unavailable("MLflow: a logged model that is not a JSON object");
  const json info = model.value("info", json::object());
  LoggedModelInfo m;
  m.model_id = text(info, "model_id");
  m.experiment_id = text(info, "experiment_id");
  m.name = text(info, "name");
  m.status = text(info, "status");
  m.artifact_uri = text(info, "artifact_uri");
  m.source_run_id = text(info, "source_run_id");
  m.creation_ms = integer(info, "creation_timestamp_ms");
  m.tags = pairs(info, "tags");
  m.params = pairs(model.value("data", json::object()), "params");
  if (m.model_id.empty()) throw Error::unavailable("MLflow: a logged model without model_id");
  return m;
}

LoggedModelInfo create_logged_model(MlflowClient& client, const std::string& experiment_id, const std::string& name,
                                    const std::string& source_run_id, const std::vector<KeyValue>& tags,
                                    const std::vector<KeyValue>& params) {
  json body = {{"experiment_id", json_text(experiment_id)}, {"name", json_text(name)},
               {"tags", pairs_json(tags)}, {"params", pairs_json(params)}};
  if (!source_run_id.empty()) body["source_run_id"] = json_text(source_run_id);
  // Not idempotent (the id is the server's): one attempt; the caller looks
  // the model up by its key before trying again.
  const json r = parse(client.call("POST", "mlflow/logged-models", dump_json(body), /*retry=*/false), "create logged model");
  return parse_logged_model(r.value("model", json()));
}

std::vector<LoggedModelInfo> search_logged_models(MlflowClient& client, const std::vector<std::string>& experiment_ids,
                                                  const std::string& filter) {
  std::vector<LoggedModelInfo> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    json body = {{"experiment_ids", experiment_ids}, {"max_results", 100}};
    if (!filter.empty()) body["filter"] = json_text(filter);
    if (!token.empty()) body["page_token"] = token;
    const json r = parse(client.call("POST", "mlflow/logged-models/search", dump_json(body)), "search logged models");
    for (const auto& m : r.value("models", json::array())) out.push_back(parse_logged_model(m));
    token = text(r, "next_page_token");
    if (token.empty()) break;
  }
  return out;
}

LoggedModelInfo get_logged_model(MlflowClient& client, const std::string& model_id) {
  const json r = parse(client.call("GET", "mlflow/logged-models/" + url_encode(model_id), ""), "get logged model");
  return parse_logged_model(r.value("model", json()));
}

void finalize_logged_model(MlflowClient& client, const std::string& model_id, const std::string& status) {
  client.call("PATCH", "mlflow/logged-models/" + url_encode(model_id),
              dump_json({{"model_id", json_text(model_id)}, {"status", status}}));
}

void delete_logged_model(MlflowClient& client, const std::string& model_id) {
  client.call("DELETE", "mlflow/logged-models/" + url_encode(model_id), dump_json({{"model_id", json_text(model_id)}}));
}

void log_model_output(MlflowClient& client, const std::string& run_id, const std::string& model_id, std::int64_t step) {
  // Each call adds a link (not idempotent): one attempt.
  client.call("POST", "mlflow/runs/outputs",
              dump_json({{"run_id", json_text(run_id)},
                         {"models", json::array({{{"model_id", json_text(model_id)}, {"step", step}}})}}),
              /*retry=*/false);
}

bool run_outputs_model(MlflowClient& client, const std::string& run_id, const std::string& model_id, std::int64_t step) {
  const json r = parse(client.call("GET", "mlflow/runs/get", dump_json({{"run_id", json_text(run_id)}})), "get run");
  const json run = r.value("run", json::object());
  const json outputs = run.is_object() ? run.value("outputs", json::object()) : json::object();
  const json links = outputs.is_object() ? outputs.value("model_outputs", json::array()) : json::array();
  if (!links.is_array()) return false;
  for (const auto& link : links) {
    if (text(link, "model_id") == model_id && integer(link, "step") == step) return true;
  }
  return false;
}

void log_model_metrics(MlflowClient& client, const std::string& run_id, const std::string& model_id,
                       const std::vector<Metric>& metrics) {
  constexpr std::size_t kPerRequest = 1000;  // log-batch's limit
  for (std::size_t at = 0; at < metrics.size(); at += kPerRequest) {
    json list = json::array();
    for (std::size_t i = at; i < metrics.size() && i < at + kPerRequest; ++i) {
      const Metric& m = metrics[i];
      list.push_back({{"key", json_text(m.key)}, {"value", encode_metric_value(m.value)}, {"timestamp", m.timestamp},
                      {"step", m.step}, {"model_id", json_text(model_id)}});
    }
    client.call("POST", "mlflow/runs/log-batch", dump_json({{"run_id", json_text(run_id)}, {"metrics", list}}));
  }
}

ModelVersion create_model_version_from_logged_model(MlflowClient& client, const std::string& name,
                                                    const std::string& model_id, const std::string& run_id) {
  json body = {{"name", json_text(name)}, {"source", "models:/" + json_text(model_id)}, {"model_id", json_text(model_id)}};
  if (!run_id.empty()) body["run_id"] = json_text(run_id);
  const json r = parse(client.call("POST", "mlflow/model-versions/create", dump_json(body)), "create model version");
  const json mv = r.value("model_version", json::object());
  ModelVersion v;
  v.name = text(mv, "name");
  v.version = text(mv, "version");
  v.source = text(mv, "source");
  v.run_id = text(mv, "run_id");
  v.status = text(mv, "status");
  return v;
}

}  // namespace fedtrack
