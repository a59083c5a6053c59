#include "mlflow_model_export.h"

#include "fedtrack/core/error.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/text.h"

namespace fedtrack {

std::optional<std::vector<MlflowModelFile>> mlflow_model_directory(const MlflowModelSource& source, std::string& why) {
  OnnxExportOptions options;
  options.source = source.description;
  options.metadata = source.metadata;
  OnnxExport model;
  try {
    model = export_onnx(source.checkpoint, options);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kFailedPrecondition && e.code() != ErrorCode::kInvalidArgument) throw;
    why = to_valid_utf8(redact_secrets(e.what()));
    return std::nullopt;
  }
  MlflowModelInfo info;
  info.card = model.card;
  info.onnx_size = model.bytes.size();
  info.onnx_version = FEDTRACK_ONNX_VERSION;
  info.run_id = source.run_id;
  info.model_id = source.model_id;
  info.artifact_path = source.artifact_path;
  info.model_uuid = new_mlflow_model_uuid();
  info.utc_time_created = mlflow_utc_now();
  info.metadata = source.metadata;
  std::vector<MlflowModelFile> files = {{kMlflowModelOnnxFile, std::move(model.bytes)}};
  for (auto& f : mlflow_environment_files()) files.push_back(std::move(f));
  files.push_back({kMlflowModelFile, mlflow_mlmodel_text(info)});
  return files;
}

}  // namespace fedtrack
