// The MLflow Model directory `fedtrack promote` uploads beside the checkpoint
// (artifact path model/ of the round's run, the registry version's source):
// MLmodel with the onnx flavor and python_function -> mlflow.onnx, the ONNX
// file, the tensor signature, and the environment files MLflow reads
// (conda.yaml, python_env.yaml, requirements.txt listing onnxruntime).
// Pure text: no MLflow, no Python, no LibTorch. Private to connectors.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/model_card.h"

namespace fedtrack {

inline constexpr const char* kMlflowModelFile = "MLmodel";
inline constexpr const char* kMlflowModelOnnxFile = "model.onnx";

struct MlflowModelInfo {
  ModelCard card;              // input shape, classes, scaling, names
  std::uint64_t onnx_size = 0; // bytes of model.onnx (model_size_bytes)
  std::string onnx_version;    // of the ONNX library that wrote the file, e.g. "1.12.0"
  std::string run_id;          // the run the directory is an artifact of
  std::string model_id;        // the MLflow 3 LoggedModel it is the artifacts of ("" = none)
  std::string artifact_path;   // its artifact path in that run, e.g. "model"
  std::string model_uuid;      // 32 hex digits
  std::string utc_time_created;  // "YYYY-MM-DD HH:MM:SS.ffffff"
  // Extra entries of MLmodel's metadata: (fedtrack lineage: job id, round,
  // git commit, DVC md5, checkpoint file), after the card's.
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct MlflowModelFile {
  std::string name;   // relative to the model directory
  std::string text;
};

// The MLmodel text. Every string that comes from a job (class and feature
// names, metadata) is written as a double-quoted YAML scalar from valid
// UTF-8, so no name can break the document.
std::string mlflow_mlmodel_text(const MlflowModelInfo& info);

// The signature MLflow shows: one float32 tensor "input" [-1, input_shape...]
// and one "logits" [-1, num_classes], as MLflow's JSON tensor specs.
std::string mlflow_signature_inputs(const ModelCard& card);
std::string mlflow_signature_outputs(const ModelCard& card);

// conda.yaml, python_env.yaml and requirements.txt, then MLmodel (last: a
// directory whose MLmodel is there is complete).
std::vector<MlflowModelFile> mlflow_environment_files();

// A fresh model_uuid (32 hex digits from std::random_device) and the current
// UTC time as MLflow writes utc_time_created.
std::string new_mlflow_model_uuid();
std::string mlflow_utc_now();

}  // namespace fedtrack
