#include "fedtrack/core/fedtrimmedavg.h"

#include "fedtrack/core/error.h"
#include "robust_aggregate.h"

namespace fedtrack {

FedTrimmedAvg::FedTrimmedAvg(FedAvgOptions options, double beta) : FedAvg(std::move(options)), beta_(beta) {
  if (!(beta >= 0 && beta < 0.5)) throw Error::invalid_argument("fedtrimmedavg: beta must be in [0, 0.5)");
}

AggregateFitOutcome FedTrimmedAvg::aggregate_fit(int, const std::vector<FitResult>& results,
                                                 const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  out.parameters = trimmed_mean(models_of(results), beta_);
  out.metrics = fit_metrics(results);
  return out;
}

}  // namespace fedtrack
