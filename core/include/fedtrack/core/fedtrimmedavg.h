// FedTrimmedAvg (Yin et al., 2018): per coordinate, drop the int(beta * n)
// largest and smallest client values and average the rest (unweighted).
#pragma once

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class FedTrimmedAvg : public FedAvg {
 public:
  FedTrimmedAvg(FedAvgOptions options, double beta);
  std::string name() const override { return "fedtrimmedavg"; }
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;

 protected:
  // Not a fold (the coordinate-wise trimmed mean sorts every coordinate over all updates): the server keeps the
  // round's K checked updates (K x model size) and calls aggregate_fit.
  bool folds_updates() const override { return false; }

 private:
  double beta_;
};

}  // namespace fedtrack
