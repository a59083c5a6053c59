// FedMedian (Yin et al., 2018): the coordinate-wise median of the client
// models, ignoring num_examples. Robust to a minority of outliers.
#pragma once

#include "fedtrack/core/fedavg.h"

namespace fedtrack {

class FedMedian : public FedAvg {
 public:
  using FedAvg::FedAvg;
  std::string name() const override { return "fedmedian"; }
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;

 protected:
  // Not a fold (the coordinate-wise median needs every update): the server keeps the
  // round's K checked updates (K x model size) and calls aggregate_fit.
  bool folds_updates() const override { return false; }
};

}  // namespace fedtrack
