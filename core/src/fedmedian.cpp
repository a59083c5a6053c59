#include "fedtrack/core/fedmedian.h"

#include "fedtrack/core/error.h"
#include "robust_aggregate.h"

namespace fedtrack {

AggregateFitOutcome FedMedian::aggregate_fit(int, const std::vector<FitResult>& results,
                                             const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  out.parameters = coordinate_median(models_of(results));
  out.metrics = fit_metrics(results);
  return out;
}

}  // namespace fedtrack
