#include "fedtrack/core/torch_client.h"

#include <torch/nn/module.h>

#include <cmath>

#include "dp_clipping.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

TrainOptions train_options_from(const ConfigRecord& config) {
  TrainOptions o;
  o.epochs = config_int(config, "epochs", o.epochs);
  o.batch_size = config_int(config, "batch_size", o.batch_size);
  o.lr = config_double(config, "lr", o.lr);
  o.optimizer = config_string(config, "optimizer", o.optimizer);
  o.momentum = config_double(config, "momentum", o.momentum);
  o.weight_decay = config_double(config, "weight_decay", o.weight_decay);
  o.proximal_mu = config_double(config, "proximal_mu", 0.0);
  if (o.proximal_mu < 0) throw Error::invalid_argument("fit config: proximal_mu must be >= 0");
  if (o.epochs < 1 || o.batch_size < 1 || !(o.lr > 0)) {
    throw Error::invalid_argument("fit config: epochs and batch_size must be >= 1 and lr > 0");
  }
  return o;
}

TorchClient::TorchClient(torch::nn::AnyModule model, TensorData train, TensorData validation,
                         std::uint64_t seed)
    : model_(std::move(model)),
      train_(std::move(train)),
      validation_(std::move(validation)),
      seed_(seed),
      fingerprint_(fingerprint(train_)) {}

TorchClient::TorchClient(torch::nn::AnyModule model, TensorData train, TensorData validation,
                         std::uint64_t seed, std::string train_fingerprint)
    : model_(std::move(model)),
      train_(std::move(train)),
      validation_(std::move(validation)),
      seed_(seed),
      fingerprint_(std::move(train_fingerprint)) {}

FitRes TorchClient::fit(const Parameters& global, const ConfigRecord& config) {
  load_parameters(*model_.ptr(), global);
  TrainOptions options = train_options_from(config);
  if (options.proximal_mu > 0) {
    for (std::size_t i = 0; i < global.buffer_begin; ++i) options.proximal_anchor.push_back(global.tensors[i]);
  }
  // A task seed from the server wins; else this client's seed mixed with the round.
  const std::uint64_t seed = config.count("seed") ? static_cast<std::uint64_t>(config_int(config, "seed", 0))
                                                  : mix(seed_ ^ mix(static_cast<std::uint64_t>(config_int(config, "round", 0))));
  std::mt19937_64 rng(seed);
  const LoopStats stats = train_classifier(model_, train_, options, rng);
  FitRes res;
  res.parameters = parameters_from_module(*model_.ptr());
  res.num_examples = train_.size();
  res.metrics["train_loss"] = stats.loss;
  res.metrics["train_accuracy"] = stats.accuracy;
  res.data_fingerprint = fingerprint_;
  if (config.count(kDpClippingNormKey)) {
    // Client-side DP: only the clipped update leaves the site; the server
    // learns whether it was clipped (for adaptive clipping), nothing more.
    const double norm = config_double(config, kDpClippingNormKey, 0.0);
    if (!(norm > 0) || !std::isfinite(norm)) {
      throw Error::invalid_argument(std::string("fit config: ") + kDpClippingNormKey + " must be > 0");
    }
    ClippedModel clipped = clip_model_update(res.parameters, global, norm);
    res.parameters = std::move(clipped.model);
    res.metrics[kDpNormBitKey] = clipped.clipped ? 1.0 : 0.0;
  }
  return res;
}

EvaluateRes TorchClient::evaluate(const Parameters& global, const ConfigRecord& config) {
  load_parameters(*model_.ptr(), global);
  const LoopStats stats =
      evaluate_classifier(model_, validation_, config_int(config, "batch_size", 1000));
  EvaluateRes res;
  res.loss = stats.loss;
  res.num_examples = stats.examples;
  res.metrics["accuracy"] = stats.accuracy;
  return res;
}

}  // namespace fedtrack
