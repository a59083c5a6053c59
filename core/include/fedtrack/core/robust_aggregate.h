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

// Krum scores: for each update, the sum of squared distances to its
// max(1, n - f - 2) nearest other updates (Blanchard et al., 2017).
std::vector<double> krum_scores(const std::vector<const Parameters*>& updates, std::int64_t num_malicious);

}  // namespace fedtrack
