// FedOpt (Reddi et al., 2021, "Adaptive Federated Optimization"): the FedAvg
// of the updates minus the current model is a pseudo-gradient delta fed to a
// server optimizer with first moment m (beta_1) and second moment v (beta_2):
//   m = beta_1 m + (1 - beta_1) delta;  v = update_v(v, delta)
//   w = w + step(round) * m / (sqrt(v) + tau)
// FedAdam, FedYogi and FedAdagrad differ in update_v and step. The moments
// are the strategy's state. Floating tensors only; integer buffers take the
// FedAvg value. Matches Flower's FedOpt family (eta_l is recorded, not used,
// as in Flower: clients train with train.lr).
#pragma once

#include <optional>

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

struct FedOptOptions {
  double eta = 1e-1;
  double eta_l = 1e-1;
  double beta_1 = 0.0;
  double beta_2 = 0.0;
  double tau = 1e-9;
};

class FedOpt : public FedAvg {
 public:
  FedOpt(FedAvgOptions options, FedOptOptions opt);
  std::optional<Parameters> initialize_parameters(ClientManager& clients) override;
  StateRecord save_state() const override;
  void restore_state(const Parameters& global, const StateRecord& state) override;

 protected:
  // The optimizer step on FedAvg's average (streamed or batch).
  AggregateFitOutcome server_step(int round, AggregateFitOutcome out) override;
  // The new second moment from the old one and delta.
  virtual torch::Tensor update_v(const torch::Tensor& v, const torch::Tensor& delta) const = 0;
  // The server step size for a round.
  virtual double step(int round) const { return opt_.eta; }
  const FedOptOptions& opt() const { return opt_; }

 private:
  FedOptOptions opt_;
  std::optional<Parameters> current_;
  std::vector<torch::Tensor> m_, v_;
};

}  // namespace fedtrack
