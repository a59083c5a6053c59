#include "fedtrack/tracking/job_records.h"

#include <nlohmann/json.hpp>

#include <vector>

#include "fedtrack/core/text.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

// MLflow's limits on a dataset (mlflow/utils/validation.py), in characters;
// as bytes they are never exceeded. A site names itself: its name is cut,
// never a reason for the server to refuse the whole write.
constexpr std::size_t kMaxDatasetName = 500;
constexpr std::size_t kMaxDatasetSource = 65535;

// MLflow's TensorSpec JSON (mlflow.types.schema), as from_numpy writes it:
// each side is itself a JSON string.
std::string tensor_schema(const ModelCard* card) {
  if (!card || card->input_shape.empty()) return "";
  json shape = json::array({-1});
  for (const auto d : card->input_shape) shape.push_back(d);
  const json features = json::array({{{"type", "tensor"}, {"tensor-spec", {{"dtype", "float32"}, {"shape", shape}}}}});
  const json targets = json::array({{{"type", "tensor"}, {"tensor-spec", {{"dtype", "int64"}, {"shape", {-1}}}}}});
  return dump_json({{"mlflow_tensorspec", {{"features", dump_json(features)}, {"targets", dump_json(targets)}}}});
}

std::string profile(std::int64_t rows, const std::string& fingerprint, const ModelCard* card) {
  json p = {{"num_rows", rows}};
  if (card && !card->input_shape.empty()) {
    json shape = json::array({rows});
    for (const auto d : card->input_shape) shape.push_back(d);
    p["features_shape"] = shape;
    p["targets_shape"] = json::array({rows});
  }
  if (card && card->num_classes > 0) p["num_classes"] = card->num_classes;
  p["fingerprint_sha256"] = json_text(fingerprint);
  return dump_json(p);
}

}  // namespace

std::string parent_run_name(const std::string& job_name, const std::string& job_id) {
  const std::string prefix = job_name + "-";
  if (job_id.size() <= prefix.size() || job_id.compare(0, prefix.size(), prefix) != 0) return prefix + job_id;
  const auto dash = job_id.rfind('-');
  return prefix + job_id.substr(dash + 1);
}

std::string dataset_digest(const std::string& fingerprint) { return json_text(fingerprint.substr(0, 16)); }

std::string training_dataset_name(const std::string& client_id) {
  const std::string suffix = "-train";
  return truncate_utf8(client_id, kMaxDatasetName - suffix.size()) + suffix;
}

DatasetInput evaluation_input(const DatasetInfo& test, const ModelCard* card) {
  DatasetInput in;
  in.name = truncate_utf8(test.name, kMaxDatasetName);
  in.digest = dataset_digest(test.fingerprint);
  in.source_type = "local";
  in.source = dump_json({{"uri", truncate_utf8(test.source, kMaxDatasetSource - 16)}});
  in.schema = tensor_schema(card);
  in.profile = profile(test.num_examples, test.fingerprint, card);
  in.tags = {{kDatasetContextTag, "evaluation"}};
  return in;
}

DatasetInput training_input(const std::string& client_id, const std::string& fingerprint, std::int64_t num_examples,
                            const ModelCard* card) {
  DatasetInput in;
  in.name = training_dataset_name(client_id);
  in.digest = dataset_digest(fingerprint);
  in.source_type = "fedtrack-site";
  in.source = dump_json({{"site", truncate_utf8(client_id, kMaxDatasetSource - 16)}});
  in.schema = tensor_schema(card);
  in.profile = profile(num_examples, fingerprint, card);
  in.tags = {{kDatasetContextTag, "training"}};
  return in;
}

}  // namespace fedtrack
