// FedAvgM (Hsu et al., 2019): FedAvg with server momentum. The pseudo-gradient
// current - fedavg(updates) feeds a momentum buffer, and the server steps
// current - server_learning_rate * momentum. With lr 1 and momentum 0 it is
// FedAvg. Matches Flower's FedAvgM.
#pragma once

#include <optional>

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class FedAvgM : public FedAvg {
 public:
  FedAvgM(FedAvgOptions options, double server_learning_rate, double server_momentum);
  std::string name() const override { return "fedavgm"; }
  std::optional<Parameters> initialize_parameters(ClientManager& clients) override;
  StateRecord save_state() const override;
  void restore_state(const Parameters& global, const StateRecord& state) override;

 protected:
  // The momentum step on FedAvg's average (streamed or batch).
  AggregateFitOutcome server_step(int round, AggregateFitOutcome out) override;

 private:
  double lr_;
  double momentum_;
  std::optional<Parameters> current_;
  std::optional<Parameters> velocity_;
};

}  // namespace fedtrack
