#include "fedtrack/core/bulyan.h"

#include <algorithm>
#include <numeric>

#include "fedtrack/core/error.h"
#include "robust_aggregate.h"

namespace fedtrack {

Bulyan::Bulyan(FedAvgOptions options, std::int64_t num_malicious_clients)
    : FedAvg(std::move(options)), num_malicious_(num_malicious_clients) {
  if (num_malicious_ < 0) throw Error::invalid_argument("bulyan: num_malicious_clients must be >= 0");
}

AggregateFitOutcome Bulyan::aggregate_fit(int, const std::vector<FitResult>& results,
                                          const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  const auto n = static_cast<std::int64_t>(results.size());
  if (n < 4 * num_malicious_ + 3) {
    throw Error::failed_precondition("bulyan needs at least 4 * num_malicious_clients + 3 = " +
                                     std::to_string(4 * num_malicious_ + 3) + " results, got " + std::to_string(n));
  }
  const std::vector<const Parameters*> models = models_of(results);
  const auto distances = squared_distances(models);  // once; each Krum pick reuses it
  std::vector<std::size_t> remaining(models.size());
  std::iota(remaining.begin(), remaining.end(), 0);
  std::vector<const Parameters*> selected;
  const std::int64_t theta = n - 2 * num_malicious_;
  for (std::int64_t k = 0; k < theta; ++k) {
    const auto scores = krum_scores(distances, remaining, num_malicious_);
    const auto best = std::min_element(scores.begin(), scores.end()) - scores.begin();
    selected.push_back(models[remaining[best]]);
    remaining.erase(remaining.begin() + best);
  }
  const Parameters median = coordinate_median(selected);
  out.parameters = closest_mean(median, selected, theta - 2 * num_malicious_);
  out.metrics = fit_metrics(results);
  return out;
}

}  // namespace fedtrack
