#include "fedtrack/core/krum.h"

#include <algorithm>
#include <numeric>

#include "fedtrack/core/aggregate.h"
#include "fedtrack/core/error.h"
#include "robust_aggregate.h"

namespace fedtrack {

Krum::Krum(FedAvgOptions options, std::int64_t num_malicious_clients, std::int64_t num_clients_to_keep)
    : FedAvg(std::move(options)), num_malicious_(num_malicious_clients), to_keep_(num_clients_to_keep) {
  if (num_malicious_ < 0 || to_keep_ < 0) {
    throw Error::invalid_argument("krum: num_malicious_clients and num_clients_to_keep must be >= 0");
  }
}

AggregateFitOutcome Krum::aggregate_fit(int, const std::vector<FitResult>& results,
                                        const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  std::vector<std::size_t> all(results.size());
  std::iota(all.begin(), all.end(), 0);
  const std::vector<double> scores = krum_scores(squared_distances(models_of(results)), all, num_malicious_);
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] < scores[b]; });
  if (to_keep_ > 0) {
    std::vector<std::pair<const Parameters*, double>> kept;
    for (std::size_t k = 0; k < std::min<std::size_t>(order.size(), static_cast<std::size_t>(to_keep_)); ++k) {
      const auto& r = results[order[k]];
      kept.emplace_back(&r.res.parameters, static_cast<double>(r.res.num_examples));
    }
    out.parameters = weighted_average(kept);
  } else {
    out.parameters = clone(results[order.front()].res.parameters);
  }
  out.metrics = fit_metrics(results);
  return out;
}

}  // namespace fedtrack
