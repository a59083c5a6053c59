// ONNX export of a fedtrack checkpoint: the graph takes raw input (pixels in
// [0, 1] as the IDX loader gives them, or the CSV feature columns), applies
// the card's standardization as Sub/Div nodes and ends in the logits. Built
// with the ONNX protobuf classes and checked with onnx::checker before it is
// returned. Torch-free header (no ONNX or LibTorch types).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/model_card.h"

namespace fedtrack {

struct OnnxExportOptions {
  std::string source;  // names the checkpoint in messages
  int opset = 13;      // kMinOpset..kMaxOpset
  // Linear and Conv2d weights stored as int8 with a float scale per output
  // channel, each behind a DequantizeLinear node (weight-only quantization:
  // about a quarter of the size; activations and arithmetic stay float).
  bool int8_weights = false;
  // Extra metadata_props (fedtrack lineage: job id, round, git commit, md5).
  std::vector<std::pair<std::string, std::string>> metadata{};
};
inline constexpr int kMinOnnxOpset = 13;
inline constexpr int kMaxOnnxOpset = 17;  // the newest opset Debian's libonnx (1.12) checks

struct OnnxExport {
  std::string bytes;               // the serialized ModelProto
  ModelCard card;
  std::vector<std::string> nodes;  // op types in graph order
};

// Rebuilds the model the checkpoint's card names, loads the checkpoint into
// it and converts it. The built-in "mlp" and "cnn" and any registered model
// that is a torch::nn::Sequential of Linear, Conv2d, ReLU, MaxPool2d,
// AvgPool2d, Flatten, BatchNorm1d/2d, Dropout (identity) and nested
// Sequentials export.
// Errors: kFailedPrecondition for a checkpoint without a card;
// kInvalidArgument for an unsupported module or model (named), a checkpoint
// whose tensors do not fit the model its card names, a bad opset;
// kCorruption for unreadable bytes.
OnnxExport export_onnx(const std::string& checkpoint_bytes, const OnnxExportOptions& options);

}  // namespace fedtrack
