#include "compression/update_codec.h"

#include <torch/types.h>
#include <torch/utils.h>

#include "fedtrack/core/error.h"

namespace fedtrack::compression {
namespace {

std::vector<FloatSpan> spans_of(const std::vector<torch::Tensor>& tensors) {
  std::vector<FloatSpan> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back({t.data_ptr<float>(), static_cast<std::size_t>(t.numel())});
  return out;
}

// Empty float32 tensors shaped like `layout`, and spans over them.
Parameters shaped_like(const Parameters& layout, std::vector<MutableFloatSpan>& spans) {
  Parameters out;
  out.names = layout.names;
  out.buffer_begin = layout.buffer_begin;
  for (const auto& t : layout.tensors) {
    out.tensors.push_back(torch::empty(t.sizes(), torch::kFloat));
    spans.push_back({out.tensors.back().data_ptr<float>(), static_cast<std::size_t>(t.numel())});
  }
  return out;
}

}  // namespace

Plan plan_for(const CompressionSpec& spec, std::uint64_t job_seed) {
  Plan plan;
  auto codec = [](const std::string& name, const char* key) {
    auto c = codec_from_name(name);
    if (!c) throw Error::invalid_argument(std::string(key) + ": unknown codec '" + name + "'");
    return *c;
  };
  plan.uplink = codec(spec.uplink, "compression.uplink");
  plan.downlink = codec(spec.downlink, "compression.downlink");
  plan.topk_fraction = spec.topk_fraction;
  plan.error_feedback = spec.error_feedback;
  plan.job_seed = job_seed;
  plan.enabled = spec.enabled();
  return plan;
}

void check_compressible(const Parameters& model) {
  for (std::size_t i = 0; i < model.size(); ++i) {
    if (model.tensors[i].scalar_type() != torch::kFloat) {
      throw Error::invalid_argument("compression needs a float32 model, but tensor '" + model.names[i] + "' is " +
                                    std::string(c10::toString(model.tensors[i].scalar_type())));
    }
  }
}

std::string encode_model(const Plan& plan, const Parameters& model, std::int64_t round) {
  check_compressible(model);
  std::vector<torch::Tensor> tensors;
  for (const auto& t : model.tensors) tensors.push_back(t.contiguous());
  EncodeOptions options{plan.downlink};
  options.seed = derive_seed(plan.job_seed, round, "", "down");
  return encode(spans_of(tensors), options);
}

Parameters decode_model(std::string_view bytes, const Parameters& layout) {
  std::vector<MutableFloatSpan> spans;
  Parameters out = shaped_like(layout, spans);
  decode(bytes, spans);
  return out;
}

std::string encode_update(const Plan& plan, const Parameters& trained, const Parameters& received, std::int64_t round,
                          const std::string& client, Residual* residual) {
  check_layout(received, trained, "the trained model");
  check_compressible(trained);
  std::vector<torch::Tensor> deltas;
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < trained.size(); ++i) {
      deltas.push_back((trained.tensors[i] - received.tensors[i]).contiguous());
    }
  }
  EncodeOptions options{plan.uplink};
  options.topk_fraction = plan.topk_fraction;
  options.seed = derive_seed(plan.job_seed, round, client, "up");
  const bool feedback = plan.error_feedback && plan.uplink != Codec::kRaw && residual != nullptr;
  return feedback ? residual->encode(spans_of(deltas), options) : encode(spans_of(deltas), options);
}

Parameters apply_update(std::string_view bytes, const Parameters& global) {
  std::vector<MutableFloatSpan> spans;
  Parameters out = shaped_like(global, spans);
  decode(bytes, spans);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < out.size(); ++i) out.tensors[i].add_(global.tensors[i]);
  return out;
}

}  // namespace fedtrack::compression
