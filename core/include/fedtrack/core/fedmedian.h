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
};

}  // namespace fedtrack
