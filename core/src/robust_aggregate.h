// Robust aggregation math shared by the Byzantine-tolerant strategies, as
// free functions (Flower's aggregate.py semantics). These ignore
// num_examples and need every update at once: memory O(clients x model).
#pragma once

#include <cstdint>
#include <vector>

#include "fedtrack/core/parameters.h"
#include "fedtrack/core/strategy.h"

namespace fedtrack {

// The client models of a round's results, in order.
std::vector<const Parameters*> models_of(const std::vector<FitResult>& results);

// Coordinate-wise median (the mean of the two middle values for an even count).
Parameters coordinate_median(const std::vector<const Parameters*>& updates);

// Coordinate-wise mean after cutting int(beta * n) values at each end;
// 0 <= beta < 0.5.
Parameters trimmed_mean(const std::vector<const Parameters*>& updates, double beta);

// Pairwise squared L2 distances between the flattened updates.
std::vector<std::vector<double>> squared_distances(const std::vector<const Parameters*>& updates);

// Krum scores: for each update, the sum of squared distances to its
// max(1, n - f - 2) nearest other updates (Blanchard et al., 2017), over the
// updates listed in `subset` (indices into `distances`).
std::vector<double> krum_scores(const std::vector<std::vector<double>>& distances,
                                const std::vector<std::size_t>& subset, std::int64_t num_malicious);

// Per coordinate, the mean of the `count` values closest to `reference`'s
// (Bulyan's second step).
Parameters closest_mean(const Parameters& reference, const std::vector<const Parameters*>& updates,
                        std::int64_t count);

}  // namespace fedtrack
