#include "mlflow_model.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

// The MLflow release whose model format this follows, the oldest onnx and
// onnxruntime that read and run the opsets fedtrack exports (13..17), and
// the Python the environment names (Debian 12's python3, fedtrack's test
// environment). The ONNX file itself does not depend on the Python version.
constexpr const char* kMlflowRequirement = "mlflow>=3.0";
constexpr const char* kOnnxRequirement = "onnx>=1.12";
constexpr const char* kOnnxruntimeRequirement = "onnxruntime>=1.14";
constexpr const char* kNumpyRequirement = "numpy";
constexpr const char* kPythonVersion = "3.11";

// A double-quoted YAML scalar (JSON string syntax, which YAML reads) of valid
// UTF-8. JSON leaves DEL, the C1 controls, U+2028/U+2029 (line breaks to
// YAML 1.1), the BOM and U+FFFE/U+FFFF raw; PyYAML refuses or folds those, so
// they are written as \uXXXX escapes too.
std::string quoted(const std::string& s) {
  const std::string json = nlohmann::json(to_valid_utf8(s)).dump();
  std::string out;
  out.reserve(json.size());
  char buf[8];
  for (size_t i = 0; i < json.size(); ++i) {
    const auto c = static_cast<unsigned char>(json[i]);
    unsigned code = 0;
    size_t len = 0;
    if (c == 0x7f) {
      code = 0x7f, len = 1;
    } else if (c == 0xc2 && i + 1 < json.size() && static_cast<unsigned char>(json[i + 1]) <= 0x9f) {
      code = static_cast<unsigned char>(json[i + 1]), len = 2;  // U+0080..U+009F
    } else if (c == 0xe2 && i + 2 < json.size() && static_cast<unsigned char>(json[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(json[i + 2]) == 0xa8 || static_cast<unsigned char>(json[i + 2]) == 0xa9)) {
      code = 0x2000 | (static_cast<unsigned char>(json[i + 2]) - 0x80), len = 3;  // U+2028, U+2029
    } else if (c == 0xef && i + 2 < json.size() &&
               ((static_cast<unsigned char>(json[i + 1]) == 0xbb && static_cast<unsigned char>(json[i + 2]) == 0xbf) ||
                (static_cast<unsigned char>(json[i + 1]) == 0xbf && static_cast<unsigned char>(json[i + 2]) >= 0xbe))) {
      code = ((c & 0x0f) << 12) | ((static_cast<unsigned char>(json[i + 1]) & 0x3f) << 6) |
             (static_cast<unsigned char>(json[i + 2]) & 0x3f), len = 3;  // U+FEFF, U+FFFE, U+FFFF
    }
    if (len == 0) {
      out += json[i];
      continue;
    }
    std::snprintf(buf, sizeof buf, "\\u%04x", code);
    out += buf;
    i += len - 1;
  }
  return out;
}

std::string tensor_spec(const std::string& name, const std::vector<std::int64_t>& shape) {
  // MLflow's own order and separators: name, type, tensor-spec {dtype, shape}.
  std::string dims = "-1";
  for (auto d : shape) dims += ", " + std::to_string(d);
  return "[{\"name\": \"" + name + "\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [" +
         dims + "]}}]";
}

std::string flow_list(const std::vector<std::string>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + quoted(items[i]);
  return s + "]";
}

std::string numbers(const std::vector<double>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", values[i]);
    s += (i ? ", " : "") + std::string(buf);
  }
  return s + "]";
}

}  // namespace

std::string mlflow_signature_inputs(const ModelCard& card) { return tensor_spec("input", card.input_shape); }

std::string mlflow_signature_outputs(const ModelCard& card) { return tensor_spec("logits", {card.num_classes}); }

std::string mlflow_mlmodel_text(const MlflowModelInfo& info) {
  const ModelCard& card = info.card;
  std::string y;
  y += "artifact_path: " + quoted(info.artifact_path) + "\n";
  y += "flavors:\n";
  y += "  onnx:\n";
  y += "    code: null\n";
  y += std::string("    data: ") + kMlflowModelOnnxFile + "\n";
  y += "    onnx_version: " + quoted(info.onnx_version) + "\n";
  y += "    providers:\n";
  y += "    - CPUExecutionProvider\n";
  y += "  python_function:\n";
  y += std::string("    data: ") + kMlflowModelOnnxFile + "\n";
  y += "    env:\n";
  y += "      conda: conda.yaml\n";
  y += "      virtualenv: python_env.yaml\n";
  y += "    loader_module: mlflow.onnx\n";
  y += std::string("    python_version: '") + kPythonVersion + "'\n";
  y += "metadata:\n";
  y += "  fedtrack.model: " + quoted(card.model) + "\n";
  y += "  fedtrack.dataset: " + quoted(card.dataset) + "\n";
  y += "  fedtrack.input: " +
       quoted(card.data_format == "csv" ? "csv feature columns (raw), scaled inside the graph"
                                        : "pixels in [0, 1] (raw), scaled inside the graph") + "\n";
  y += "  fedtrack.scaling_mean: " + numbers(card.scaling_mean) + "\n";
  y += "  fedtrack.scaling_stddev: " + numbers(card.scaling_stddev) + "\n";
  if (!card.feature_names.empty()) y += "  feature_names: " + flow_list(card.feature_names) + "\n";
  if (!card.class_names.empty()) y += "  class_names: " + flow_list(card.class_names) + "\n";
  for (const auto& [k, v] : info.metadata) y += "  " + quoted(k) + ": " + quoted(v) + "\n";
  y += std::string("mlflow_version: 3.0.0\n");
  y += "model_size_bytes: " + std::to_string(info.onnx_size) + "\n";
  y += "model_uuid: " + quoted(info.model_uuid) + "\n";
  if (!info.model_id.empty()) y += "model_id: " + quoted(info.model_id) + "\n";
  y += "run_id: " + quoted(info.run_id) + "\n";
  y += "signature:\n";
  y += "  inputs: " + quoted(mlflow_signature_inputs(card)) + "\n";
  y += "  outputs: " + quoted(mlflow_signature_outputs(card)) + "\n";
  y += "  params: null\n";
  y += "utc_time_created: " + quoted(info.utc_time_created) + "\n";
  return y;
}

std::vector<MlflowModelFile> mlflow_environment_files() {
  const std::string pins = std::string(kMlflowRequirement) + "\n" + kNumpyRequirement + "\n" + kOnnxRequirement + "\n" +
                           kOnnxruntimeRequirement + "\n";
  std::string conda = "channels:\n- conda-forge\ndependencies:\n- python=" + std::string(kPythonVersion) + "\n- pip\n- pip:\n";
  for (const char* p : {kMlflowRequirement, kNumpyRequirement, kOnnxRequirement, kOnnxruntimeRequirement}) {
    conda += "  - " + std::string(p) + "\n";
  }
  conda += "name: mlflow-env\n";
  const std::string python_env = "python: '" + std::string(kPythonVersion) +
                                 "'\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\ndependencies:\n- -r requirements.txt\n";
  return {{"conda.yaml", conda}, {"python_env.yaml", python_env}, {"requirements.txt", pins}};
}

std::string new_mlflow_model_uuid() {
  std::random_device rd;
  std::string s;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) s += hex[rd() % 16];
  return s;
}

std::string mlflow_utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  return buf;
}

}  // namespace fedtrack
