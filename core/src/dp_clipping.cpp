#include "dp_clipping.h"

#include <algorithm>
#include <cmath>

#include "fedtrack/core/error.h"

namespace fedtrack {

double update_norm(const Parameters& model, const Parameters& global) {
  check_layout(global, model, "model update");
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    if (!model.tensors[i].is_floating_point()) continue;
    const torch::Tensor d = model.tensors[i].to(torch::kDouble) - global.tensors[i].to(torch::kDouble);
    sum += d.square().sum().item<double>();
  }
  return std::sqrt(sum);
}

ClippedModel clip_model_update(const Parameters& model, const Parameters& global, double clipping_norm) {
  if (!(clipping_norm > 0)) throw Error::invalid_argument("clipping norm must be > 0");
  ClippedModel out;
  out.norm = update_norm(model, global);
  out.clipped = out.norm > clipping_norm;
  const double scale = out.clipped ? clipping_norm / out.norm : 1.0;
  torch::NoGradGuard no_grad;
  out.model.names = model.names;
  out.model.buffer_begin = model.buffer_begin;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const torch::Tensor& m = model.tensors[i];
    const torch::Tensor& g = global.tensors[i];
    if (!m.is_floating_point()) {
      out.model.tensors.push_back(g.clone());
    } else if (!out.clipped) {
      out.model.tensors.push_back(m);
    } else {
      // In double, then back to the tensor's dtype: one rounding per element.
      const torch::Tensor gd = g.to(torch::kDouble);
      out.model.tensors.push_back((gd + (m.to(torch::kDouble) - gd) * scale).to(m.scalar_type()).contiguous());
    }
  }
  return out;
}

void add_gaussian_noise(Parameters& params, double stddev, std::mt19937_64& rng) {
  if (!(stddev >= 0) || !std::isfinite(stddev)) throw Error::invalid_argument("noise stddev must be finite and >= 0");
  torch::NoGradGuard no_grad;
  // A fresh distribution per call: std::normal_distribution caches a spare
  // draw, which would otherwise be state outside the rng.
  std::normal_distribution<double> normal(0.0, stddev);
  for (auto& t : params.tensors) {
    if (!t.is_floating_point()) continue;
    torch::Tensor noise = torch::empty({t.numel()}, torch::TensorOptions().dtype(torch::kDouble));
    double* p = noise.data_ptr<double>();
    for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = normal(rng);
    t = t + noise.view(t.sizes()).to(t.scalar_type());  // a new tensor: `t` may share storage
  }
}

}  // namespace fedtrack
