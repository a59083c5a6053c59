// FedAdam: v = beta_2 v + (1 - beta_2) delta^2, with Adam's bias-corrected
// step eta * sqrt(1 - beta_2^t) / (1 - beta_1^t). Flower uses t = round + 1
// (one step ahead of Kingma & Ba's t = round); fedtrack does the same so the
// two agree, and says so in docs/jobs.md ("Strategies").
#pragma once

#include <cmath>

#include "fedtrack/core/fedopt.h"

namespace fedtrack {

class FedAdam : public FedOpt {
 public:
  using FedOpt::FedOpt;
  std::string name() const override { return "fedadam"; }

 protected:
  torch::Tensor update_v(const torch::Tensor& v, const torch::Tensor& delta) const override {
    return v * opt().beta_2 + delta * delta * (1 - opt().beta_2);
  }
  double step(int round) const override {
    const double t = round + 1.0;
    return opt().eta * std::sqrt(1 - std::pow(opt().beta_2, t)) / (1 - std::pow(opt().beta_1, t));
  }
};

}  // namespace fedtrack
