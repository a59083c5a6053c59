// Krum and MultiKrum (Blanchard et al., 2017): score each update by the sum of
// squared distances to its n - f - 2 nearest neighbours (f =
// num_malicious_clients); Krum keeps the lowest-scoring update, MultiKrum
// (num_clients_to_keep = k > 0) the weighted average of the k lowest.
#pragma once

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class Krum : public FedAvg {
 public:
  Krum(FedAvgOptions options, std::int64_t num_malicious_clients, std::int64_t num_clients_to_keep);
  std::string name() const override { return to_keep_ > 0 ? "multikrum" : "krum"; }
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;

 protected:
  // Not a fold (Krum scores each update by its distances to all others): the server keeps the
  // round's K checked updates (K x model size) and calls aggregate_fit.
  bool folds_updates() const override { return false; }

 private:
  std::int64_t num_malicious_;
  std::int64_t to_keep_;
};

}  // namespace fedtrack
