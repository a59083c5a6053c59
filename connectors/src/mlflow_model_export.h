// The MLflow Model directory of a checkpoint (MLmodel with the onnx flavor,
// model.onnx, the environment files), exported with LibTorch: what
// `fedtrack promote` puts beside a registered checkpoint and what a job puts
// in a round's LoggedModel when it exports ONNX. Private to connectors.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mlflow_model.h"

namespace fedtrack {

struct MlflowModelSource {
  std::string checkpoint;     // the LibTorch checkpoint bytes (with their model card)
  std::string description;    // for messages: "the promoted checkpoint of run ..."
  std::string run_id;         // MLmodel's run_id ("" when not known yet)
  std::string model_id;       // MLmodel's model_id: the LoggedModel ("" = none)
  std::string artifact_path;  // MLmodel's artifact_path
  std::vector<std::pair<std::string, std::string>> metadata;  // lineage, in MLmodel's metadata
};

// The files, MLmodel last (a directory that has it is complete). nullopt,
// with `why` set, when the checkpoint cannot be exported (no model card, a
// module ONNX export does not support); other errors are thrown.
std::optional<std::vector<MlflowModelFile>> mlflow_model_directory(const MlflowModelSource& source, std::string& why);

}  // namespace fedtrack
