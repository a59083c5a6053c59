// libFuzzer target: the compressed-update decoder (FTCU,
// core/src/compression/codec.cpp), which reads every compressed fit result a
// site sends and every compressed model a server broadcasts.
// Input: one byte choosing the model layout the payload must match
// (kLayouts), then the payload. Contract: see fuzz_contract.h. Round trip:
// what decodes, encoded again with the same codec, decodes again; for raw
// and fp16 to the same bytes.
#include <cstdint>
#include <vector>

#include "fedtrack/core/compression.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "compression";
const std::vector<std::vector<std::size_t>> kLayouts = {{8, 2}, {0, 1}, {300, 17, 1}, {2048}};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  using namespace fedtrack::compression;
  if (size == 0) return 0;
  const auto& layout = kLayouts[data[0] % kLayouts.size()];
  const std::string_view bytes = fuzz::as_text(data + 1, size - 1);

  std::vector<std::vector<float>> values;
  std::vector<MutableFloatSpan> out;
  for (auto n : layout) values.emplace_back(n, 0.0f);
  for (auto& v : values) out.push_back({v.data(), v.size()});
  if (!fuzz::decodes(kTarget, [&] { decode(bytes, out); })) return 0;

  const Codec codec = payload_codec(bytes);
  std::vector<FloatSpan> in;
  for (const auto& v : values) in.push_back({v.data(), v.size()});
  EncodeOptions options{codec};
  options.topk_fraction = 1.0;
  std::string again;
  fuzz::must_not_throw(kTarget, "encode(decode(p))", [&] { again = encode(in, options); });
  std::vector<std::vector<float>> second = values;
  std::vector<MutableFloatSpan> second_out;
  for (auto& v : second) second_out.push_back({v.data(), v.size()});
  fuzz::must_not_throw(kTarget, "decode(encode(decode(p)))", [&] { decode(again, second_out); });
  if (codec == Codec::kRaw || codec == Codec::kFp16) {
    fuzz::check(again == bytes, kTarget, "a raw or fp16 payload does not re-encode to the same bytes");
  }
  if (codec == Codec::kTopk) fuzz::check(second == values, kTarget, "topk(1.0) of a decoded payload decodes differently");
  return 0;
}
