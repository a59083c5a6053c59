// FedProx (Li et al., 2020): FedAvg on the server; each client adds
// (proximal_mu / 2) * ||w - w_global||^2 to its local loss, which keeps
// non-IID clients from drifting. The server sends `proximal_mu` in every fit
// config; TorchClient applies it.
#pragma once

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class FedProx : public FedAvg {
 public:
  FedProx(FedAvgOptions options, double proximal_mu);
  std::string name() const override { return "fedprox"; }
  std::vector<FitInstruction> configure_fit(int round, std::shared_ptr<const Parameters> global,
                                            ClientManager& clients) override;

 private:
  double proximal_mu_;
};

}  // namespace fedtrack
