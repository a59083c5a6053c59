// Local training and evaluation loops for a classification model, used by
// TorchClient and by the server's centralized evaluation. Deterministic:
// shuffling uses the caller's RNG, never LibTorch's global generator, so
// clients can train concurrently without disturbing each other.
#pragma once

#include <torch/nn/modules/container/any.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

namespace fedtrack {

// Examples held in memory: features [N, ...] float32, labels [N] int64.
struct TensorData {
  torch::Tensor features;
  torch::Tensor labels;
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct TrainOptions {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 32;
  double lr = 0.05;
  std::string optimizer = "sgd";  // sgd | adam
  double momentum = 0.0;
  double weight_decay = 0.0;
  // FedProx: adds (proximal_mu / 2) * ||w - anchor||^2 to the loss, where
  // anchor is the global model's parameters (model.parameters() order).
  double proximal_mu = 0.0;
  std::vector<torch::Tensor> proximal_anchor;
};

struct LoopStats {
  double loss = 0;      // mean cross-entropy (last epoch, for training)
  double accuracy = 0;  // fraction correct
  std::int64_t examples = 0;
};

// Trains `model` in place with cross-entropy. Error(kInvalidArgument) for an
// unknown optimizer; Error(kFailedPrecondition) if the loss becomes NaN/Inf.
LoopStats train_classifier(torch::nn::AnyModule& model, const TensorData& data,
                           const TrainOptions& options, std::mt19937_64& rng);

// Examples read front to back, a batch at a time: `open()` starts a pass
// whose `next(n)` gives the following n examples. Lets evaluation read a
// test split streamed from its file without holding it in memory.
class ExampleStream {
 public:
  virtual ~ExampleStream() = default;
  virtual TensorData next(std::int64_t n) = 0;
};

struct ExampleSource {
  std::int64_t size = 0;
  std::function<std::unique_ptr<ExampleStream>()> open;
};

// Passes over examples held in memory (slices of `data`'s tensors).
ExampleSource held_examples(const TensorData& data);

// Mean cross-entropy and accuracy, in eval mode, without gradients, over
// batches [0, b), [b, 2b), ... in that order (the same batches, hence the
// same sums, for both overloads).
LoopStats evaluate_classifier(torch::nn::AnyModule& model, const TensorData& data,
                              std::int64_t batch_size);
LoopStats evaluate_classifier(torch::nn::AnyModule& model, const ExampleSource& data,
                              std::int64_t batch_size);

// Rows of `data` at `indices` (a copy).
TensorData select_rows(const TensorData& data, const std::vector<std::int64_t>& indices);

// SHA-256 (hex) over the labels and feature bytes of `data`, in order.
std::string fingerprint(const TensorData& data);

}  // namespace fedtrack
