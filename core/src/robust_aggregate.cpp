#include "fedtrack/core/robust_aggregate.h"

#include <algorithm>
#include <numeric>

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

// Applies `reduce` to each tensor position stacked over the updates (dim 0).
template <typename Reduce>
Parameters per_tensor(const std::vector<const Parameters*>& updates, Reduce reduce) {
  if (updates.empty()) throw Error::invalid_argument("aggregate: no updates");
  Parameters out;
  out.names = updates.front()->names;
  out.buffer_begin = updates.front()->buffer_begin;
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < out.names.size(); ++i) {
    std::vector<torch::Tensor> column;
    for (const auto* u : updates) column.push_back(u->tensors.at(i));
    const auto dtype = column.front().scalar_type();
    torch::Tensor stacked = torch::stack(column);
    if (!stacked.is_floating_point()) stacked = stacked.to(torch::kDouble);
    torch::Tensor r = reduce(stacked);
    out.tensors.push_back(r.scalar_type() == dtype ? r.contiguous() : r.round().to(dtype));
  }
  return out;
}

}  // namespace

std::vector<const Parameters*> models_of(const std::vector<FitResult>& results) {
  std::vector<const Parameters*> out;
  for (const auto& r : results) out.push_back(&r.res.parameters);
  return out;
}

Parameters coordinate_median(const std::vector<const Parameters*>& updates) {
  return per_tensor(updates, [](const torch::Tensor& stacked) {
    const auto n = stacked.size(0);
    const torch::Tensor sorted = std::get<0>(stacked.sort(0));
    if (n % 2 == 1) return sorted[n / 2].clone();
    return ((sorted[n / 2 - 1] + sorted[n / 2]) / 2).contiguous();
  });
}

Parameters trimmed_mean(const std::vector<const Parameters*>& updates, double beta) {
  if (!(beta >= 0 && beta < 0.5)) throw Error::invalid_argument("trimmed mean: beta must be in [0, 0.5)");
  return per_tensor(updates, [beta](const torch::Tensor& stacked) {
    const auto n = stacked.size(0);
    const auto cut = static_cast<std::int64_t>(beta * static_cast<double>(n));
    const torch::Tensor sorted = std::get<0>(stacked.sort(0));
    return sorted.slice(0, cut, n - cut).mean(0);
  });
}

std::vector<double> krum_scores(const std::vector<const Parameters*>& updates, std::int64_t num_malicious) {
  const auto n = static_cast<std::int64_t>(updates.size());
  std::vector<torch::Tensor> flat;
  for (const auto* u : updates) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : u->tensors) parts.push_back(t.reshape({-1}).to(torch::kFloat));
    flat.push_back(torch::cat(parts));
  }
  std::vector<std::vector<double>> d(n, std::vector<double>(n, 0.0));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      const double norm = (flat[i] - flat[j]).norm().item<double>();
      d[i][j] = norm * norm;
    }
  }
  const std::int64_t closest = std::max<std::int64_t>(1, n - num_malicious - 2);
  std::vector<double> scores(n);
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return d[i][a] < d[i][b]; });
    double s = 0;
    // order[0] is the update itself (distance 0); Flower skips index 0 of the sort too.
    for (std::int64_t k = 1; k <= closest && k < n; ++k) s += d[i][order[k]];
    scores[i] = s;
  }
  return scores;
}

}  // namespace fedtrack
