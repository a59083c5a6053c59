// q-FedAvg (Li et al., 2020, "Fair Resource Allocation in Federated
// Learning"): clients with a higher loss weigh more. With L the client's
// loss, lr the client learning rate and g = (w_global - w_client) / lr:
//   delta_k = L^q g_k,  h_k = q L^(q-1) ||g_k||^2 + L^q / lr
//   w = w_global - sum_k delta_k / sum_k h_k
// L is each client's reported train_loss, as in the paper. (Flower's QFedAvg
// uses the server's centralized evaluation loss for every client instead.)
#pragma once

#include <optional>

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class QFedAvg : public FedAvg {
 public:
  QFedAvg(FedAvgOptions options, double q, double client_learning_rate);
  std::string name() const override { return "qfedavg"; }
  std::optional<Parameters> initialize_parameters(ClientManager& clients) override;
  std::vector<FitInstruction> configure_fit(int round, std::shared_ptr<const Parameters> global,
                                            ClientManager& clients) override;
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;

 protected:
  // Not a fold (q-FedAvg weighs each update by its loss and the sum of all norms): the server keeps the
  // round's K checked updates (K x model size) and calls aggregate_fit.
  bool folds_updates() const override { return false; }

 private:
  double q_;
  double lr_;
  std::shared_ptr<const Parameters> before_;  // the global model the round's clients started from
};

}  // namespace fedtrack
