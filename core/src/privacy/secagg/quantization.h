// SecAgg+ quantization, with the same arithmetic as Flower's secaggplus
// workflow (flwr.common.secure_aggregation.quantization and the client mod):
//
//   client: ratio  = num_examples / max_weight
//           q      = round_half_even(ratio * quantization_range)   (the weight word)
//           x'     = float32(x * float32(q / quantization_range))
//           pre    = (clip(x', ±c) + c) * float32(R / 2c)           (float32, as numpy)
//           word   = ceil(pre) - [u < ceil(pre) - pre]             (stochastic rounding, u ~ U[0,1))
//   server: sum    = Σ words mod modulus (masks cancel)
//           value  = (sum * 2c/R - c) - (n - 1) c, times R / Σ q   (float64)
//
// so the result is the num_examples-weighted mean of the clients' clipped
// vectors. Departure from Flower: the weight word is capped at
// (modulus_range - 1) / clients, so the sum of the weights of a round's
// clients can never wrap around the modulus (Flower only warns when
// num_examples > max_weight). Every other word is at most
// quantization_range, and the server refuses a round where clients x
// quantization_range reaches the modulus. Torch-free, pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace fedtrack::secagg {

struct QuantizationParams {
  double clipping_range = 8.0;
  std::uint64_t quantization_range = 1ULL << 22;
  std::uint64_t modulus_range = 1ULL << 32;
  double max_weight = 1000.0;
};

// The quantized weight q of a client with `num_examples` examples in a
// round of `clients` clients.
std::uint32_t quantized_weight(double num_examples, const QuantizationParams& params, std::size_t clients);

// Flower's quantize() of float32 values (already scaled), with the uniform
// draws of the stochastic rounding supplied by `uniform` (one per value, in
// order, like numpy's rand(n)).
std::vector<std::uint32_t> quantize(const float* values, std::size_t n, double clipping_range,
                                    std::uint64_t quantization_range, const std::function<double()>& uniform);

// Flower's dequantize() of one (summed) quantized value.
double dequantize(std::uint64_t word, double clipping_range, std::uint64_t quantization_range);

// The client's whole vector: [q, quantize(x * q/R)...] (length n + 1).
std::vector<std::uint32_t> quantize_weighted(const float* update, std::size_t n, std::uint32_t q,
                                             const QuantizationParams& params,
                                             const std::function<double()>& uniform);

// The server's weighted mean from the unmasked sum of `clients` vectors
// (sum[0] = Σ q). Error(kCorruption) if Σ q is 0.
std::vector<float> dequantize_mean(const std::vector<std::uint32_t>& sum, std::size_t clients,
                                   const QuantizationParams& params);

}  // namespace fedtrack::secagg
