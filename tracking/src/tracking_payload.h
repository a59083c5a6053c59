// The JSON payloads the journal stores for each write, and their way back.
// Private to tracking/.
//
// Every text that enters one of these documents (or a request body) goes
// through json_text() first, and every document leaves through dump_json(),
// which cannot throw on text: a byte that is not UTF-8 (a client's error
// text, a file name in Latin-1) becomes U+FFFD instead of ending the job.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// `text` as valid UTF-8 (ill-formed bytes -> U+FFFD).
std::string json_text(std::string_view text);

// Serializes `j`; text that is still not UTF-8 is replaced, never thrown on.
std::string dump_json(const nlohmann::json& j);

// A metric value as MLflow's JSON wants it: a number, or "NaN",
// "Infinity", "-Infinity" (nlohmann would write null).
nlohmann::json encode_metric_value(double value);
// Error(kCorruption) for anything but a number or one of those strings.
double decode_metric_value(const nlohmann::json& value);

nlohmann::json tags_payload(const std::vector<KeyValue>& tags);

// Metrics keep NaN / +-Inf as the strings MLflow accepts; a metric with a
// dataset is [key, value, timestamp, step, dataset name, dataset digest].
nlohmann::json batch_payload(const LogBatch& batch);

// An "inputs" write: {"datasets": [{name, digest, source_type, source,
// schema?, profile?, tags}]}.
nlohmann::json inputs_payload(const std::vector<DatasetInput>& datasets);

// An "artifact" write: {"path": ..., "content": ...}; content is text
// (valid UTF-8), uploaded as it is.
nlohmann::json artifact_payload(const std::string& path, const std::string& content);

}  // namespace fedtrack
