// The aggregation math shared by strategies, as free functions.
//
// Weighted averaging is streaming: WeightedAverage holds one accumulator the
// size of the model and folds client updates in one at a time, so memory is
// O(model), not O(clients x model). Floating tensors accumulate in their own
// dtype with pre-normalized weights (one fused multiply-add pass per client);
// integer buffers accumulate in float64 and are rounded back. Folding the same
// updates in the same order gives the same bytes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "fedtrack/core/parameters.h"
#include "fedtrack/core/records.h"

namespace fedtrack {

class WeightedAverage {
 public:
  // `layout` fixes names, shapes and dtypes; `total_weight` is the sum of the
  // weights that will be added (e.g. total num_examples) and must be > 0.
  WeightedAverage(const Parameters& layout, double total_weight);

  // Folds in one update. Error(kInvalidArgument) on a layout mismatch or a
  // negative weight.
  void add(const Parameters& update, double weight);

  // The average so far (exact once every weight has been added).
  Parameters result() const;

 private:
  Parameters acc_;
  std::vector<c10::ScalarType> dtypes_;  // the layout's dtypes
  double total_weight_;
  double added_weight_ = 0;
};

// sum_k w_k * p_k / sum_k w_k, folding in the given order.
Parameters weighted_average(const std::vector<std::pair<const Parameters*, double>>& updates);

// Per key, the weighted mean over the records that have the key.
Metrics weighted_metrics_average(const std::vector<std::pair<const Metrics*, double>>& records);

// Weighted mean of scalar values; 0 when the weights sum to 0.
double weighted_mean(const std::vector<std::pair<double, double>>& values_and_weights);

}  // namespace fedtrack
