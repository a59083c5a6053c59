// FedAdagrad: v = v + delta^2; step eta. Flower's FedAdagrad fixes beta_1 =
// beta_2 = 0 (so m = delta); fedtrack accepts only eta, eta_l and tau for it.
#pragma once

#include "fedtrack/core/fedopt.h"

namespace fedtrack {

class FedAdagrad : public FedOpt {
 public:
  using FedOpt::FedOpt;
  std::string name() const override { return "fedadagrad"; }

 protected:
  torch::Tensor update_v(const torch::Tensor& v, const torch::Tensor& delta) const override {
    return v + delta * delta;
  }
};

}  // namespace fedtrack
