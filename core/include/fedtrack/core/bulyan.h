// Bulyan (El Mhamdi et al., 2018), as Flower implements it: with f =
// num_malicious_clients and n >= 4f + 3 updates, pick theta = n - 2f updates
// by repeated Krum (each pick removed), then per coordinate average the
// beta = theta - 2f selected values closest to their median.
#pragma once

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class Bulyan : public FedAvg {
 public:
  Bulyan(FedAvgOptions options, std::int64_t num_malicious_clients);
  std::string name() const override { return "bulyan"; }
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;

 protected:
  // Not a fold (Bulyan runs Krum selection and a coordinate-wise trimmed mean over all updates): the server keeps the
  // round's K checked updates (K x model size) and calls aggregate_fit.
  bool folds_updates() const override { return false; }

 private:
  std::int64_t num_malicious_;
};

}  // namespace fedtrack
