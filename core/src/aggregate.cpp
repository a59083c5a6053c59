#include "fedtrack/core/aggregate.h"

#include <map>

#include "fedtrack/core/error.h"

namespace fedtrack {

WeightedAverage::WeightedAverage(const Parameters& layout, double total_weight)
    : total_weight_(total_weight) {
  if (!(total_weight > 0)) throw Error::invalid_argument("aggregate: total weight must be > 0");
  acc_.names = layout.names;
  acc_.buffer_begin = layout.buffer_begin;
  acc_.tensors.reserve(layout.size());
  for (const auto& t : layout.tensors) {
    dtypes_.push_back(t.scalar_type());
    const auto dtype = t.is_floating_point() ? t.scalar_type() : torch::kDouble;
    acc_.tensors.push_back(torch::zeros(t.sizes(), torch::TensorOptions().dtype(dtype)));
  }
}

void WeightedAverage::add(const Parameters& update, double weight) {
  if (weight < 0) throw Error::invalid_argument("aggregate: negative weight");
  if (update.size() != acc_.size()) {
    throw Error::invalid_argument("aggregate: update has " + std::to_string(update.size()) +
                                  " tensors, expected " + std::to_string(acc_.size()));
  }
  for (std::size_t i = 0; i < acc_.size(); ++i) {
    const auto& u = update.tensors[i];
    if (u.sizes() != acc_.tensors[i].sizes() || u.scalar_type() != dtypes_[i]) {
      throw Error::invalid_argument("aggregate: update tensor '" + acc_.names[i] +
                                    "' differs in shape or dtype from the global model");
    }
  }
  const double w = weight / total_weight_;
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < acc_.size(); ++i) {
    const auto& u = update.tensors[i];
    auto& a = acc_.tensors[i];
    if (u.is_floating_point()) {
      a.add_(u, w);
    } else {
      a.add_(u.to(torch::kDouble), w);
    }
  }
  added_weight_ += weight;
}

Parameters WeightedAverage::result() const {
  Parameters out;
  out.names = acc_.names;
  out.buffer_begin = acc_.buffer_begin;
  out.tensors.reserve(acc_.size());
  for (std::size_t i = 0; i < acc_.size(); ++i) {
    const auto& a = acc_.tensors[i];
    out.tensors.push_back(a.scalar_type() == dtypes_[i] ? a.clone() : a.round().to(dtypes_[i]));
  }
  return out;
}

WeightedSum::WeightedSum(const Parameters& layout) {
  acc_.names = layout.names;
  acc_.buffer_begin = layout.buffer_begin;
  acc_.tensors.reserve(layout.size());
  for (const auto& t : layout.tensors) {
    dtypes_.push_back(t.scalar_type());
    const auto dtype = t.is_floating_point() ? t.scalar_type() : torch::kDouble;
    acc_.tensors.push_back(torch::zeros(t.sizes(), torch::TensorOptions().dtype(dtype)));
  }
}

void WeightedSum::add(const Parameters& update, double weight) {
  if (!(weight > 0)) throw Error::invalid_argument("aggregate: an update's weight must be > 0");
  if (update.size() != acc_.size()) {
    throw Error::invalid_argument("aggregate: update has " + std::to_string(update.size()) + " tensors, expected " +
                                  std::to_string(acc_.size()));
  }
  for (std::size_t i = 0; i < acc_.size(); ++i) {
    const auto& u = update.tensors[i];
    if (u.sizes() != acc_.tensors[i].sizes() || u.scalar_type() != dtypes_[i]) {
      throw Error::invalid_argument("aggregate: update tensor '" + acc_.names[i] +
                                    "' differs in shape or dtype from the global model");
    }
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < acc_.size(); ++i) {
    const auto& u = update.tensors[i];
    if (u.is_floating_point()) {
      acc_.tensors[i].add_(u, weight);
    } else {
      acc_.tensors[i].add_(u.to(torch::kDouble), weight);
    }
  }
  total_weight_ += weight;
  ++count_;
}

Parameters WeightedSum::take_average() {
  if (count_ == 0) throw Error::failed_precondition("aggregate: no updates to average (or the average was taken)");
  torch::NoGradGuard no_grad;
  Parameters out = std::move(acc_);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto& a = out.tensors[i];
    a.div_(total_weight_);
    if (a.scalar_type() != dtypes_[i]) a = a.round().to(dtypes_[i]);
  }
  acc_ = Parameters{};
  count_ = 0;
  return out;
}

Parameters weighted_average(const std::vector<std::pair<const Parameters*, double>>& updates) {
  if (updates.empty()) throw Error::invalid_argument("aggregate: no updates to average");
  double total = 0;
  for (const auto& [p, w] : updates) total += w;
  WeightedAverage avg(*updates.front().first, total);
  for (const auto& [p, w] : updates) avg.add(*p, w);
  return avg.result();
}

Metrics weighted_metrics_average(const std::vector<std::pair<const Metrics*, double>>& records) {
  std::map<std::string, std::pair<double, double>> sums;  // key -> (sum w*x, sum w)
  for (const auto& [metrics, w] : records) {
    for (const auto& [key, value] : *metrics) {
      auto& s = sums[key];
      s.first += w * value;
      s.second += w;
    }
  }
  Metrics out;
  for (const auto& [key, s] : sums) out[key] = s.second > 0 ? s.first / s.second : 0.0;
  return out;
}

double weighted_mean(const std::vector<std::pair<double, double>>& values_and_weights) {
  double sum = 0, weight = 0;
  for (const auto& [v, w] : values_and_weights) {
    sum += v * w;
    weight += w;
  }
  return weight > 0 ? sum / weight : 0.0;
}

}  // namespace fedtrack
