// Test tool: fedtrack's SecAgg+ quantization on JSON input, so that
// tests/integration/test_secagg_vs_flower.py can compare it with Flower's.
// stdin:  {"clipping_range", "quantization_range", "modulus_range", "max_weight",
//          "clients": [{"values": [...], "num_examples", "uniforms": [...]}]}
// stdout: {"words": [[q, w...], ...], "mean": [...]}  (mean: the server's
//          dequantized weighted mean of the summed words)
#include <iostream>
#include <nlohmann/json.hpp>

#include "privacy/secagg/quantization.h"

int main() {
  using namespace fedtrack::secagg;
  auto in = nlohmann::json::parse(std::cin);
  QuantizationParams q;
  q.clipping_range = in.at("clipping_range").get<double>();
  q.quantization_range = in.at("quantization_range").get<std::uint64_t>();
  q.modulus_range = in.at("modulus_range").get<std::uint64_t>();
  q.max_weight = in.at("max_weight").get<double>();
  nlohmann::json out;
  out["words"] = nlohmann::json::array();
  std::vector<std::uint32_t> sum;
  for (const auto& client : in.at("clients")) {
    auto values = client.at("values").get<std::vector<float>>();
    auto uniforms = client.at("uniforms").get<std::vector<double>>();
    std::size_t next = 0;
    auto words = quantize_weighted(values.data(), values.size(),
                                   quantized_weight(client.at("num_examples").get<double>(), q, in.at("clients").size()), q,
                                   [&] { return uniforms.at(next++); });
    if (sum.empty()) sum.assign(words.size(), 0);
    for (std::size_t i = 0; i < words.size(); ++i) {
      sum[i] = static_cast<std::uint32_t>((sum[i] + words[i]) % q.modulus_range);
    }
    out["words"].push_back(words);
  }
  out["mean"] = dequantize_mean(sum, in.at("clients").size(), q);
  std::cout << out.dump() << "\n";
  return 0;
}
