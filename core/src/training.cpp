#include "fedtrack/core/training.h"

#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module,
                                                        const TrainOptions& o) {
  if (o.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        module.parameters(),
        torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  if (o.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        module.parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw Error::invalid_argument("unknown optimizer '" + o.optimizer + "' (expected sgd or adam)");
}

}  // namespace

LoopStats train_classifier(torch::nn::AnyModule& model, const TensorData& data,
                           const TrainOptions& options, std::mt19937_64& rng) {
  LoopStats stats;
  const std::int64_t n = data.size();
  if (n == 0) return stats;
  auto module = model.ptr();
  module->train();
  auto optimizer = make_optimizer(*module, options);
  std::vector<std::int64_t> order(n);
  for (std::int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const torch::Tensor perm = torch::from_blob(order.data(), {n}, torch::kLong);
    double loss_sum = 0;
    std::int64_t correct = 0;
    for (std::int64_t begin = 0; begin < n; begin += options.batch_size) {
      const std::int64_t end = std::min(n, begin + options.batch_size);
      const torch::Tensor idx = perm.slice(0, begin, end);
      const torch::Tensor x = data.features.index_select(0, idx);
      const torch::Tensor y = data.labels.index_select(0, idx);
      optimizer->zero_grad();
      const torch::Tensor logits = model.forward(x);
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
      const torch::Tensor data_loss = loss.detach();
      if (options.proximal_mu > 0) {
        torch::Tensor proximal = torch::zeros({}, logits.options());
        const auto params = module->parameters();
        for (std::size_t p = 0; p < params.size(); ++p) {
          proximal = proximal + (params[p] - options.proximal_anchor.at(p)).pow(2).sum();
        }
        loss = loss + proximal * (options.proximal_mu / 2);
      }
      loss.backward();
      optimizer->step();
      const double l = data_loss.item<double>();
      if (!std::isfinite(l)) {
        throw Error::failed_precondition("training diverged: loss is " + std::to_string(l) +
                                         " (try a lower learning rate)");
      }
      loss_sum += l * static_cast<double>(end - begin);
      correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
    }
    stats.loss = loss_sum / static_cast<double>(n);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  }
  stats.examples = n;
  return stats;
}

namespace {

// A pass over examples held in memory: slices, no copies.
class SliceStream : public ExampleStream {
 public:
  explicit SliceStream(TensorData data) : data_(std::move(data)) {}
  TensorData next(std::int64_t n) override {
    const std::int64_t begin = at_;
    at_ += n;
    return {data_.features.slice(0, begin, at_), data_.labels.slice(0, begin, at_)};
  }

 private:
  TensorData data_;  // shares the caller's tensors
  std::int64_t at_ = 0;
};

}  // namespace

ExampleSource held_examples(const TensorData& data) {
  return {data.size(), [data] { return std::make_unique<SliceStream>(data); }};
}

LoopStats evaluate_classifier(torch::nn::AnyModule& model, const TensorData& data,
                              std::int64_t batch_size) {
  return evaluate_classifier(model, held_examples(data), batch_size);
}

LoopStats evaluate_classifier(torch::nn::AnyModule& model, const ExampleSource& data,
                              std::int64_t batch_size) {
  LoopStats stats;
  const std::int64_t n = data.size;
  if (n == 0) return stats;
  if (batch_size <= 0) throw Error::invalid_argument("evaluation batch size must be > 0");
  torch::NoGradGuard no_grad;
  auto module = model.ptr();
  module->eval();
  const std::unique_ptr<ExampleStream> examples = data.open();
  double loss_sum = 0;
  std::int64_t correct = 0;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const TensorData batch = examples->next(std::min(batch_size, n - begin));
    const torch::Tensor logits = model.forward(batch.features);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(batch.labels).sum().item<std::int64_t>();
  }
  module->train();
  stats.loss = loss_sum / static_cast<double>(n);
  stats.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  stats.examples = n;
  return stats;
}

TensorData select_rows(const TensorData& data, const std::vector<std::int64_t>& indices) {
  std::vector<std::int64_t> copy = indices;
  const torch::Tensor idx =
      torch::from_blob(copy.data(), {static_cast<std::int64_t>(copy.size())}, torch::kLong).clone();
  return {data.features.index_select(0, idx), data.labels.index_select(0, idx)};
}

std::string fingerprint(const TensorData& data) {
  Sha256 hash;
  const torch::Tensor labels = data.labels.contiguous();
  const torch::Tensor features = data.features.contiguous();
  hash.update(labels.data_ptr(), labels.numel() * labels.element_size());
  hash.update(features.data_ptr(), features.numel() * features.element_size());
  return hash.hex();
}

}  // namespace fedtrack
