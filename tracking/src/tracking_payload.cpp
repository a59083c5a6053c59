#include "tracking_payload.h"

#include <cmath>
#include <cstdlib>

#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/journal.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

json pairs(const std::vector<KeyValue>& kvs) {
  json out = json::array();
  for (const auto& kv : kvs) out.push_back({json_text(kv.key), json_text(kv.value)});
  return out;
}

// The checks below throw std::domain_error; decode_write turns any of them
// (and nlohmann's own) into one corruption error naming the write.
const json& field(const json& j, const char* key) {
  if (!j.is_object()) throw std::domain_error("not a JSON object");
  return j.at(key);
}

std::string text_of(const json& j) {
  if (!j.is_string()) throw std::domain_error("expected a string, got " + std::string(j.type_name()));
  return j.get<std::string>();
}

std::int64_t integer_of(const json& j) {
  if (!j.is_number_integer()) throw std::domain_error("expected an integer, got " + std::string(j.type_name()));
  return j.get<std::int64_t>();
}

const json& array_of(const json& j) {
  if (!j.is_array()) throw std::domain_error("expected an array, got " + std::string(j.type_name()));
  return j;
}

std::vector<KeyValue> unpairs(const json& j) {
  std::vector<KeyValue> out;
  for (const auto& kv : array_of(j)) {
    if (!kv.is_array() || kv.size() != 2) throw std::domain_error("expected a [key, value] pair");
    out.push_back({text_of(kv.at(0)), text_of(kv.at(1))});
  }
  return out;
}

std::vector<KeyValue> optional_pairs(const json& j, const char* key) {
  return j.contains(key) ? unpairs(j.at(key)) : std::vector<KeyValue>{};
}

LogBatch decode_batch(const json& payload) {
  LogBatch batch;
  if (payload.contains("metrics")) {
    for (const auto& m : array_of(payload.at("metrics"))) {
      if (!m.is_array() || (m.size() != 4 && m.size() != 6)) {
        throw std::domain_error("expected a [key, value, timestamp, step(, dataset name, dataset digest)] metric");
      }
      batch.metrics.push_back({text_of(m.at(0)), decode_metric_value(m.at(1)), integer_of(m.at(2)), integer_of(m.at(3))});
      if (m.size() == 6) {
        batch.metrics.back().dataset_name = text_of(m.at(4));
        batch.metrics.back().dataset_digest = text_of(m.at(5));
      }
    }
  }
  batch.params = optional_pairs(payload, "params");
  batch.tags = optional_pairs(payload, "tags");
  return batch;
}

DatasetInput decode_dataset(const json& d) {
  DatasetInput out;
  out.name = text_of(field(d, "name"));
  out.digest = text_of(field(d, "digest"));
  out.source_type = text_of(field(d, "source_type"));
  out.source = text_of(field(d, "source"));
  if (d.contains("schema")) out.schema = text_of(d.at("schema"));
  if (d.contains("profile")) out.profile = text_of(d.at("profile"));
  out.tags = optional_pairs(d, "tags");
  return out;
}

std::vector<DatasetInput> decode_datasets(const json& j) {
  std::vector<DatasetInput> out;
  for (const auto& d : array_of(j)) out.push_back(decode_dataset(d));
  return out;
}

}  // namespace

json inputs_payload(const std::vector<DatasetInput>& datasets) {
  json list = json::array();
  for (const auto& d : datasets) {
    json one = {{"name", json_text(d.name)}, {"digest", json_text(d.digest)}, {"source_type", json_text(d.source_type)},
                {"source", json_text(d.source)}, {"tags", pairs(d.tags)}};
    if (!d.schema.empty()) one["schema"] = json_text(d.schema);
    if (!d.profile.empty()) one["profile"] = json_text(d.profile);
    list.push_back(std::move(one));
  }
  return {{"datasets", list}};
}

json artifact_payload(const std::string& path, const std::string& content) {
  return {{"path", json_text(path)}, {"content", json_text(content)}};
}

std::string json_text(std::string_view text) { return to_valid_utf8(text); }

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json encode_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

double decode_metric_value(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) throw Error::corruption("metric value: expected a number, got " + std::string(v.type_name()));
  const std::string s = v.get<std::string>();
  if (s == "NaN") return std::nan("");
  if (s == "Infinity") return INFINITY;
  if (s == "-Infinity") return -INFINITY;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw Error::corruption("metric value: '" + json_text(s) + "' is not a number");
  return d;
}

json tags_payload(const std::vector<KeyValue>& tags) { return pairs(tags); }

json batch_payload(const LogBatch& batch) {
  json metrics = json::array();
  for (const auto& m : batch.metrics) {
    json metric = {json_text(m.key), encode_metric_value(m.value), m.timestamp, m.step};
    if (!m.dataset_name.empty() || !m.dataset_digest.empty()) {
      metric.push_back(json_text(m.dataset_name));
      metric.push_back(json_text(m.dataset_digest));
    }
    metrics.push_back(std::move(metric));
  }
  return {{"metrics", metrics}, {"params", pairs(batch.params)}, {"tags", pairs(batch.tags)}};
}

JournalWrite decode_write(const JournalOp& op, const std::string& journal_path) {
  JournalWrite w;
  try {
    const json payload = json::parse(op.payload);
    if (!payload.is_object()) throw std::domain_error("not a JSON object");
    if (op.op == "create") {
      w.tags = optional_pairs(payload, "tags");
      if (payload.contains("start_time")) w.start_time = integer_of(field(payload, "start_time"));
      if (payload.contains("user")) w.user = text_of(field(payload, "user"));
      if (payload.contains("experiment_id")) w.experiment_id = text_of(field(payload, "experiment_id"));
    } else if (op.op == "batch") {
      w.batch = decode_batch(payload);
    } else if (op.op == "inputs") {
      w.datasets = decode_datasets(field(payload, "datasets"));
    } else if (op.op == "artifact") {
      w.artifact_path = text_of(field(payload, "path"));
      w.artifact_content = text_of(field(payload, "content"));
      if (w.artifact_path.empty()) throw std::domain_error("artifact path is empty");
    } else if (op.op == "verify") {
      // no payload to speak of
    } else if (op.op == "end") {
      w.status = text_of(field(payload, "status"));
      if (payload.contains("end_time")) w.end_time = integer_of(field(payload, "end_time"));
    } else {
      throw std::domain_error("unknown write kind '" + json_text(op.op) + "'");
    }
  } catch (const std::exception& e) {  // nlohmann's parse/type errors, the checks above, Error
    throw Error::corruption("journal " + journal_path + ": write " + std::to_string(op.seq) + " (" +
                            json_text(op.op) + " of run " + json_text(op.run_key) +
                            ") is corrupt: " + json_text(e.what()));
  }
  return w;
}

}  // namespace fedtrack
