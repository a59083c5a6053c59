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

// The fold behind FedAvg and the server optimizers, for updates that arrive
// one at a time without knowing the round's total weight in advance:
// acc += w_k * p_k in the tensors' own floating dtype (integer buffers in
// float64), and result() = acc / sum_k w_k (integer buffers rounded back).
// One accumulator the size of the model. The bytes depend on the order of
// add() calls: the server folds in client-id order (update_fold.h), so the
// result is the same whatever order the updates arrived in, and equal to
// folding the same updates as a batch.
class WeightedSum {
 public:
  explicit WeightedSum(const Parameters& layout);
  // Error(kInvalidArgument) on a layout mismatch or a weight that is not > 0.
  void add(const Parameters& update, double weight);
  double total_weight() const { return total_weight_; }
  std::size_t count() const { return count_; }
  // The average, divided in place (no second model-sized copy): the sum
  // is consumed, further calls are Error(kFailedPrecondition), as is a
  // call before any add().
  Parameters take_average();

 private:
  Parameters acc_;
  std::vector<c10::ScalarType> dtypes_;
  double total_weight_ = 0;
  std::size_t count_ = 0;
};

// sum_k w_k * p_k / sum_k w_k, folding in the given order.
Parameters weighted_average(const std::vector<std::pair<const Parameters*, double>>& updates);

// Per key, the weighted mean over the records that have the key.
Metrics weighted_metrics_average(const std::vector<std::pair<const Metrics*, double>>& records);

// Weighted mean of scalar values; 0 when the weights sum to 0.
double weighted_mean(const std::vector<std::pair<double, double>>& values_and_weights);

}  // namespace fedtrack
