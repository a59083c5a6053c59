#include "privacy/secagg/quantization.h"

#include <algorithm>
#include <cmath>

#include "fedtrack/core/error.h"

namespace fedtrack::secagg {

std::uint32_t quantized_weight(double num_examples, const QuantizationParams& params, std::size_t clients) {
  const double cap = static_cast<double>((params.modulus_range - 1) / std::max<std::size_t>(clients, 1));
  double ratio = std::min(std::max(num_examples, 0.0) / params.max_weight,
                          cap / static_cast<double>(params.quantization_range));
  // Python's round(): half to even, which is nearbyint under the default
  // (to-nearest) rounding mode that fedtrack never changes.
  return static_cast<std::uint32_t>(
      std::min(std::nearbyint(ratio * static_cast<double>(params.quantization_range)), std::floor(cap)));
}

std::vector<std::uint32_t> quantize(const float* values, std::size_t n, double clipping_range,
                                    std::uint64_t quantization_range, const std::function<double()>& uniform) {
  const float c = static_cast<float>(clipping_range);
  const float quantizer = static_cast<float>(static_cast<double>(quantization_range) / (2 * clipping_range));
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    float x = values[i];
    if (std::isnan(x)) x = 0.0f;  // never reached for validated updates; keeps the word in range
    float pre = (std::clamp(x, -c, c) + c) * quantizer;
    float up = std::ceil(pre);
    auto word = static_cast<std::int64_t>(up);
    if (uniform() < static_cast<double>(up) - static_cast<double>(pre)) --word;
    word = std::clamp<std::int64_t>(word, 0, static_cast<std::int64_t>(quantization_range));
    out[i] = static_cast<std::uint32_t>(word);
  }
  return out;
}

double dequantize(std::uint64_t word, double clipping_range, std::uint64_t quantization_range) {
  double quantizer = (2 * clipping_range) / static_cast<double>(quantization_range);
  return static_cast<double>(word) * quantizer + (-clipping_range);
}

std::vector<std::uint32_t> quantize_weighted(const float* update, std::size_t n, std::uint32_t q,
                                             const QuantizationParams& params,
                                             const std::function<double()>& uniform) {
  const float dq = static_cast<float>(static_cast<double>(q) / static_cast<double>(params.quantization_range));
  std::vector<float> scaled(update, update + n);
  for (auto& v : scaled) v *= dq;
  auto words = quantize(scaled.data(), n, params.clipping_range, params.quantization_range, uniform);
  words.insert(words.begin(), q);
  return words;
}

std::vector<float> dequantize_mean(const std::vector<std::uint32_t>& sum, std::size_t clients,
                                   const QuantizationParams& params) {
  if (sum.empty() || sum[0] == 0) {
    throw Error::corruption("secure aggregation: the unmasked sum has a total weight of 0");
  }
  const double inverse_total = static_cast<double>(params.quantization_range) / static_cast<double>(sum[0]);
  const double offset = -(static_cast<double>(clients) - 1) * params.clipping_range;
  std::vector<float> out(sum.size() - 1);
  for (std::size_t i = 1; i < sum.size(); ++i) {
    double v = dequantize(sum[i], params.clipping_range, params.quantization_range);
    v += offset;
    v *= inverse_total;
    out[i - 1] = static_cast<float>(v);
  }
  return out;
}

}  // namespace fedtrack::secagg
