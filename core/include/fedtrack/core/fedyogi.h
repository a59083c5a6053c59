// FedYogi: v = v - (1 - beta_2) delta^2 sign(v - delta^2); v grows more
// slowly than Adam's when delta is large. Step eta, no bias correction
// (Flower's FedYogi; v starts at 0 there, not at tau^2 as in the paper).
#pragma once

#include "fedtrack/core/fedopt.h"

namespace fedtrack {

class FedYogi : public FedOpt {
 public:
  using FedOpt::FedOpt;
  std::string name() const override { return "fedyogi"; }

 protected:
  torch::Tensor update_v(const torch::Tensor& v, const torch::Tensor& delta) const override {
    const torch::Tensor d2 = delta * delta;
    return v - d2 * (1 - opt().beta_2) * (v - d2).sign();
  }
};

}  // namespace fedtrack
