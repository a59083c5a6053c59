// Models — a registry of classifiers by name. Built-ins: "mlp" (two hidden
// ReLU layers) and "cnn" (LeNet-5 style, for 1xHxW images).
//
// Register your own torch::nn::Module before running a job:
//
//   struct TinyImpl : torch::nn::Module {
//     TinyImpl(int64_t in, int64_t classes) : fc(register_module("fc", torch::nn::Linear(in, classes))) {}
//     torch::Tensor forward(torch::Tensor x) { return fc(x.flatten(1)); }
//     torch::nn::Linear fc;
//   };
//   TORCH_MODULE(Tiny);
//
//   fedtrack::register_model("tiny", [](const fedtrack::ModelInput& in) {
//     return torch::nn::AnyModule(Tiny(in.num_features(), in.num_classes));
//   });
//
// then use `model: tiny` in the job (see examples/custom-model). The module's
// forward takes a float batch [N, ...feature_shape] and returns logits
// [N, num_classes]. The registry is thread-safe.
#pragma once

#include <torch/nn/modules/container/any.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fedtrack {

struct ModelInput {
  std::vector<std::int64_t> feature_shape;  // {1, 28, 28} for images, {k} for tables
  std::int64_t num_classes = 0;
  std::int64_t num_features() const;        // product of feature_shape
};

using ModelFactory = std::function<torch::nn::AnyModule(const ModelInput&)>;

// Error(kAlreadyExists) if the name is taken, kInvalidArgument if empty.
void register_model(const std::string& name, ModelFactory factory);

// Error(kNotFound) listing the known names for an unknown one;
// kInvalidArgument if the model cannot take this input (cnn on a table).
torch::nn::AnyModule make_model(const std::string& name, const ModelInput& input);

// Sorted.
std::vector<std::string> model_names();

}  // namespace fedtrack
