// The JSON payloads the journal stores for each write, and their way back.
// Private to tracking/.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// A metric value as MLflow's JSON wants it: a number, or "NaN",
// "Infinity", "-Infinity" (nlohmann would write null).
nlohmann::json encode_metric_value(double value);
double decode_metric_value(const nlohmann::json& value);

nlohmann::json tags_payload(const std::vector<KeyValue>& tags);
std::vector<KeyValue> payload_tags(const nlohmann::json& payload);

// Metrics keep NaN / +-Inf as the strings MLflow accepts.
nlohmann::json batch_payload(const LogBatch& batch);
LogBatch payload_batch(const nlohmann::json& payload);

}  // namespace fedtrack
