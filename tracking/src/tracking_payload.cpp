#include "tracking_payload.h"

#include <cmath>
#include <cstdlib>

namespace fedtrack {
namespace {

using json = nlohmann::json;

}  // namespace

json encode_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

double decode_metric_value(const json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "NaN") return std::nan("");
  if (s == "Infinity") return INFINITY;
  if (s == "-Infinity") return -INFINITY;
  return std::strtod(s.c_str(), nullptr);
}

namespace {

json pairs(const std::vector<KeyValue>& kvs) {
  json out = json::array();
  for (const auto& kv : kvs) out.push_back({kv.key, kv.value});
  return out;
}

std::vector<KeyValue> unpairs(const json& j) {
  std::vector<KeyValue> out;
  for (const auto& kv : j) out.push_back({kv.at(0).get<std::string>(), kv.at(1).get<std::string>()});
  return out;
}

}  // namespace

json tags_payload(const std::vector<KeyValue>& tags) { return pairs(tags); }

std::vector<KeyValue> payload_tags(const json& payload) {
  return payload.contains("tags") ? unpairs(payload.at("tags")) : std::vector<KeyValue>{};
}

json batch_payload(const LogBatch& batch) {
  json metrics = json::array();
  for (const auto& m : batch.metrics) metrics.push_back({m.key, encode_metric_value(m.value), m.timestamp, m.step});
  return {{"metrics", metrics}, {"params", pairs(batch.params)}, {"tags", pairs(batch.tags)}};
}

LogBatch payload_batch(const json& payload) {
  LogBatch batch;
  for (const auto& m : payload.value("metrics", json::array())) {
    batch.metrics.push_back({m.at(0).get<std::string>(), decode_metric_value(m.at(1)), m.at(2).get<std::int64_t>(),
                             m.at(3).get<std::int64_t>()});
  }
  batch.params = unpairs(payload.value("params", json::array()));
  batch.tags = unpairs(payload.value("tags", json::array()));
  return batch;
}

}  // namespace fedtrack
