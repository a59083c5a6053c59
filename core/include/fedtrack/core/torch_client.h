// TorchClient — a ready ClientApp that trains a registered model on its local
// data with SGD or Adam. The round's config (sent by the server) sets epochs,
// batch_size, lr, optimizer, momentum and weight_decay; "round" seeds the
// local shuffle together with the client's seed, so training is repeatable.
//
// Every FitRes carries `data_fingerprint`: SHA-256 over the client's training
// examples (labels and feature bytes, in order), computed once. It identifies
// the data version a site trained on without revealing the data.
// Called by one thread at a time (ClientApp's contract).
#pragma once

#include <cstdint>
#include <string>

#include "fedtrack/core/client_app.h"
#include "fedtrack/core/training.h"

namespace fedtrack {

class TorchClient : public ClientApp {
 public:
  // `train` is what fit() learns from; `validation` is what evaluate() scores
  // (it may be empty: evaluate then reports zero examples).
  TorchClient(torch::nn::AnyModule model, TensorData train, TensorData validation,
              std::uint64_t seed);
  // The same, with `train`'s fingerprint already known (it must be
  // fingerprint(train)): a client built anew for every call (the
  // simulation's virtual clients) does not hash its data every time.
  TorchClient(torch::nn::AnyModule model, TensorData train, TensorData validation,
              std::uint64_t seed, std::string train_fingerprint);

  FitRes fit(const Parameters& global, const ConfigRecord& config) override;
  EvaluateRes evaluate(const Parameters& global, const ConfigRecord& config) override;

  const std::string& data_fingerprint() const { return fingerprint_; }
  std::int64_t num_train_examples() const { return train_.size(); }

 private:
  torch::nn::AnyModule model_;
  TensorData train_;
  TensorData validation_;
  std::uint64_t seed_;
  std::string fingerprint_;
};

// Reads TrainOptions from a fit config (keys as in the job's `train:` section).
TrainOptions train_options_from(const ConfigRecord& config);

}  // namespace fedtrack
