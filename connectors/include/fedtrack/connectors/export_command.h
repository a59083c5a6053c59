// `fedtrack export`: a versioned round or a checkpoint file as an ONNX model
// (preprocessing inside, logits out). Torch-free.
#pragma once

#include <iosfwd>
#include <string>

namespace fedtrack {

struct ExportArgs {
  std::string repo;        // with rev; empty: find_model_repository
  std::string rev;
  std::string path = "models/global.pt";
  std::string checkpoint;  // or a checkpoint file
  // Or a promoted model, resolved and md5-checked as `fedtrack restore` does:
  // --model-name with one of --alias / --stage / --version.
  std::string model_name;
  std::string alias;
  std::string stage;
  std::string version;
  std::string tracking_uri;
  std::string format = "onnx";
  std::string out;
  int opset = 13;
};

// Return 0; throw fedtrack::Error (2 bad arguments, unsupported module,
// checkpoint that does not fit its model, missing --out folder; 3 unknown
// revision or missing file; 5 unreadable checkpoint; 7 a checkpoint without a model card).
// Nothing is written on failure.
int export_command(const ExportArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fedtrack
