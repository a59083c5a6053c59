#include "robust_aggregate.h"

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

Parameters closest_mean(const Parameters& reference, const std::vector<const Parameters*>& updates,
                        std::int64_t count) {
  if (count < 1 || count > static_cast<std::int64_t>(updates.size())) {
    throw Error::invalid_argument("closest mean: count must be in [1, number of updates]");
  }
  std::size_t index = 0;
  return per_tensor(updates, [&](const torch::Tensor& stacked) {
    const torch::Tensor ref = reference.tensors.at(index++).to(stacked.scalar_type());
    const torch::Tensor order = std::get<1>((stacked - ref).abs().sort(0));
    return stacked.gather(0, order.slice(0, 0, count)).mean(0);
  });
}

std::vector<std::vector<double>> squared_distances(const std::vector<const Parameters*>& updates) {
  const std::size_t n = updates.size();
  std::vector<torch::Tensor> flat;
  for (const auto* u : updates) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : u->tensors) parts.push_back(t.reshape({-1}).to(torch::kFloat));
    flat.push_back(torch::cat(parts));
  }
  std::vector<std::vector<double>> d(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double norm = (flat[i] - flat[j]).norm().item<double>();
      d[i][j] = d[j][i] = norm * norm;
    }
  }
  return d;
}

std::vector<double> krum_scores(const std::vector<std::vector<double>>& d, const std::vector<std::size_t>& subset,
                                std::int64_t num_malicious) {
  const auto n = static_cast<std::int64_t>(subset.size());
  const std::int64_t closest = std::max<std::int64_t>(1, n - num_malicious - 2);
  std::vector<double> scores(subset.size());
  for (std::size_t a = 0; a < subset.size(); ++a) {
    std::vector<double> others;
    for (std::size_t b = 0; b < subset.size(); ++b) {
      if (b != a) others.push_back(d[subset[a]][subset[b]]);
    }
    std::sort(others.begin(), others.end());
    double s = 0;
    for (std::int64_t k = 0; k < closest && k < static_cast<std::int64_t>(others.size()); ++k) s += others[k];
    scores[a] = s;
  }
  return scores;
}

}  // namespace fedtrack
