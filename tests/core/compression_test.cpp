// The update codecs (fedtrack/core/compression.h): round trips, the int8
// error bound and unbiasedness, top-k with error feedback, and the decoder's
// refusals of malformed payloads.
#include "fedtrack/core/compression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "fedtrack/core/error.h"

namespace fedtrack::compression {
namespace {

using Tensors = std::vector<std::vector<float>>;

std::vector<FloatSpan> spans(const Tensors& t) {
  std::vector<FloatSpan> out;
  for (const auto& v : t) out.push_back({v.data(), v.size()});
  return out;
}

Tensors decode_like(const std::string& bytes, const Tensors& layout) {
  Tensors out;
  for (const auto& v : layout) out.emplace_back(v.size(), -1.0f);
  std::vector<MutableFloatSpan> s;
  for (auto& v : out) s.push_back({v.data(), v.size()});
  decode(bytes, s);
  return out;
}

Tensors random_tensors(std::uint32_t seed, std::vector<std::size_t> sizes, float stddev = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Tensors out;
  for (auto n : sizes) {
    out.emplace_back(n);
    for (auto& x : out.back()) x = normal(rng);
  }
  return out;
}

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(CompressionFp16, EveryFiniteHalfRoundTripsExactly) {
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // infinity and NaN
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    ASSERT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(CompressionFp16, RoundsToNearestTiesToEven) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-26.0f, 16.0f);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(mantissa(rng), static_cast<int>(exponent(rng)));
    if (i % 2) x = -x;
    if (std::fabs(x) >= 65520.0f) continue;
    const std::uint16_t h = float_to_half(x);
    const double d = half_to_float(h);
    const double err = std::fabs(static_cast<double>(x) - d);
    for (int step : {-1, 1}) {
      const std::uint16_t n = static_cast<std::uint16_t>(h + step);
      if ((n & 0x7fffu) >= 0x7c00u || ((h & 0x7fffu) == 0 && step < 0)) continue;
      const double other = std::fabs(static_cast<double>(x) - half_to_float(n));
      ASSERT_LE(err, other) << x;
      if (err == other) {
        ASSERT_EQ(h & 1u, 0u) << "tie not to even: " << x;
      }
    }
  }
  // The half-way points themselves.
  EXPECT_EQ(float_to_half(1.0f + 0x1.0p-11f), 0x3c00u);                 // tie, 1.0 is even
  EXPECT_EQ(float_to_half(1.0f + 3 * 0x1.0p-11f), 0x3c02u);             // tie, rounds up to even
  EXPECT_EQ(float_to_half(0x1.0p-25f), 0x0000u);                        // half the smallest subnormal
  EXPECT_EQ(float_to_half(0x1.8p-24f), 0x0002u);                        // 1.5 subnormals -> 2
  EXPECT_EQ(float_to_half(65504.0f), 0x7bffu);
  EXPECT_EQ(float_to_half(65519.99f), 0x7bffu);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00u);
}

TEST(CompressionFp16, PayloadDecodesToTheHalfOfEveryValue) {
  const Tensors t = random_tensors(1, {1000, 3, 0, 17});
  const std::string bytes = encode(spans(t), {Codec::kFp16});
  EXPECT_EQ(payload_codec(bytes), Codec::kFp16);
  const Tensors d = decode_like(bytes, t);
  for (std::size_t a = 0; a < t.size(); ++a) {
    for (std::size_t i = 0; i < t[a].size(); ++i) {
      ASSERT_EQ(bits(d[a][i]), bits(half_to_float(float_to_half(t[a][i]))));
    }
  }
  // 2 bytes per value plus the headers.
  EXPECT_EQ(bytes.size(), 12u + 4 * 8 + 2 * 1020);
}

TEST(CompressionFp16, ValuesPastTheHalfRangeAreRefusedByTheEncoder) {
  const Tensors t = {{1.0f, 70000.0f}};
  try {
    encode(spans(t), {Codec::kFp16});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
}

TEST(CompressionRaw, RoundTripIsExact) {
  const Tensors t = random_tensors(2, {50, 1});
  const Tensors d = decode_like(encode(spans(t), {Codec::kRaw}), t);
  EXPECT_EQ(d, t);
}

TEST(CompressionInt8, ErrorIsBelowOneStepOfItsChunksScale) {
  const Tensors t = random_tensors(3, {1000, 300, 1});
  EncodeOptions o{Codec::kInt8};
  o.int8_chunk = 64;
  o.seed = 99;
  const std::string bytes = encode(spans(t), o);
  const Tensors d = decode_like(bytes, t);
  for (std::size_t a = 0; a < t.size(); ++a) {
    for (std::size_t c = 0; c * 64 < t[a].size(); ++c) {
      float max_abs = 0;
      const std::size_t end = std::min(t[a].size(), c * 64 + 64);
      for (std::size_t i = c * 64; i < end; ++i) max_abs = std::max(max_abs, std::fabs(t[a][i]));
      const float scale = max_abs / 127.0f;
      for (std::size_t i = c * 64; i < end; ++i) {
        ASSERT_LE(std::fabs(t[a][i] - d[a][i]), scale * (1 + 1e-5f)) << "tensor " << a << " element " << i;
      }
    }
  }
  // 1 byte per value plus a 4-byte scale per chunk.
  EXPECT_EQ(bytes.size(), 12u + 3 * (8 + 4) + (16 + 5 + 1) * 4 + 1301);
  // Deterministic per seed; another seed rounds differently.
  EXPECT_EQ(encode(spans(t), o), bytes);
  o.seed = 100;
  EXPECT_NE(encode(spans(t), o), bytes);
}

TEST(CompressionInt8, StochasticRoundingIsUnbiased) {
  // A value a third of the way between two steps: the mean over many seeds is
  // the value, where round-to-nearest would always give the lower step.
  const Tensors t = {{127.0f, 10.0f + 1.0f / 3.0f, -20.0f - 2.0f / 3.0f}};  // scale 1
  const int draws = 20000;
  double sum1 = 0, sum2 = 0;
  for (int s = 0; s < draws; ++s) {
    EncodeOptions o{Codec::kInt8};
    o.seed = derive_seed(42, s, "client-001", "up");
    const Tensors d = decode_like(encode(spans(t), o), t);
    ASSERT_EQ(d[0][0], 127.0f);
    ASSERT_TRUE(d[0][1] == 10.0f || d[0][1] == 11.0f) << d[0][1];
    sum1 += d[0][1];
    sum2 += d[0][2];
  }
  // Bernoulli(1/3): stddev of the mean sqrt(2/9 / 20000) = 0.0033; 5 sigma.
  EXPECT_NEAR(sum1 / draws, 10.0 + 1.0 / 3.0, 0.017);
  EXPECT_NEAR(sum2 / draws, -20.0 - 2.0 / 3.0, 0.017);
}

TEST(CompressionInt8, SizeIsAQuarterOfFloat32) {
  const Tensors t = random_tensors(4, {100000, 256, 10});
  const std::string raw = encode(spans(t), {Codec::kRaw});
  const std::string q = encode(spans(t), {Codec::kInt8});
  EXPECT_GE(static_cast<double>(raw.size()) / static_cast<double>(q.size()), 3.9);
}

TEST(CompressionTopk, KeepsTheLargestMagnitudesOfEachTensor) {
  const Tensors t = {{0.1f, -5.0f, 0.2f, 3.0f, -0.3f, 0.0f, 4.0f, -0.05f, 0.01f, 2.0f}, {1.0f, -2.0f}};
  EncodeOptions o{Codec::kTopk};
  o.topk_fraction = 0.3;  // ceil(3) of 10, ceil(0.6) = 1 of 2
  const Tensors d = decode_like(encode(spans(t), o), t);
  EXPECT_EQ(d[0], (std::vector<float>{0, -5.0f, 0, 3.0f, 0, 0, 4.0f, 0, 0, 0}));
  EXPECT_EQ(d[1], (std::vector<float>{0, -2.0f}));
  EXPECT_EQ(topk_count(100000, 0.01), 1000u);
  EXPECT_EQ(topk_count(10, 0.01), 1u);
  EXPECT_EQ(topk_count(0, 0.01), 0u);
  EXPECT_EQ(topk_count(7, 1.0), 7u);
}

TEST(CompressionTopk, OnePercentIsOverFortyTimesSmallerThanFloat32) {
  const Tensors t = random_tensors(5, {200704, 256, 32768, 128, 1280, 10});  // the default MLP's tensors
  EncodeOptions o{Codec::kTopk};
  o.topk_fraction = 0.01;
  const std::string raw = encode(spans(t), {Codec::kRaw});
  EXPECT_GE(static_cast<double>(raw.size()) / static_cast<double>(encode(spans(t), o).size()), 40.0);
}

// The documented invariant: per coordinate, each sent value is the float sum
// of the updates since the coordinate was last sent, accumulated newest-first,
// and the final residual is that sum over the rounds since the last send.
TEST(CompressionTopk, ErrorFeedbackSendsEverythingExactlyInTheDocumentedOrder) {
  const std::vector<std::size_t> sizes = {500, 37};
  EncodeOptions o{Codec::kTopk};
  o.topk_fraction = 0.02;
  Residual residual;
  Tensors pending;  // the replayed per-coordinate run since the last send
  for (auto n : sizes) pending.emplace_back(n, 0.0f);
  std::vector<std::vector<double>> sent_total(sizes.size()), update_total(sizes.size());
  for (std::size_t a = 0; a < sizes.size(); ++a) {
    sent_total[a].assign(sizes[a], 0.0);
    update_total[a].assign(sizes[a], 0.0);
  }
  std::size_t sends_checked = 0;
  for (int round = 0; round < 30; ++round) {
    const Tensors u = random_tensors(100 + round, sizes, 0.1f);
    const Tensors sent = decode_like(residual.encode(spans(u), o), u);
    for (std::size_t a = 0; a < sizes.size(); ++a) {
      for (std::size_t i = 0; i < sizes[a]; ++i) {
        pending[a][i] = u[a][i] + pending[a][i];
        update_total[a][i] += u[a][i];
        sent_total[a][i] += sent[a][i];
        if (sent[a][i] != 0.0f) {
          ASSERT_EQ(bits(sent[a][i]), bits(pending[a][i])) << "round " << round << " tensor " << a << " element " << i;
          ASSERT_EQ(residual.values()[a][i], 0.0f);
          pending[a][i] = 0.0f;
          ++sends_checked;
        } else {
          ASSERT_EQ(bits(residual.values()[a][i]), bits(pending[a][i]));
        }
      }
    }
  }
  EXPECT_GE(sends_checked, 30u * (10 + 1));
  // In real numbers the two totals differ only by the float rounding of the runs.
  for (std::size_t a = 0; a < sizes.size(); ++a) {
    for (std::size_t i = 0; i < sizes[a]; ++i) {
      EXPECT_NEAR(sent_total[a][i] + residual.values()[a][i], update_total[a][i], 1e-5);
    }
  }
}

TEST(CompressionResidual, RefusesAnUpdateOfAnotherLayout) {
  Residual r;
  r.encode(spans(random_tensors(1, {10})), {Codec::kTopk});
  EXPECT_THROW(r.encode(spans(random_tensors(1, {11})), {Codec::kTopk}), Error);
  EXPECT_THROW(r.encode(spans(random_tensors(1, {10, 1})), {Codec::kTopk}), Error);
}

TEST(CompressionEncode, RefusesNonFiniteInput) {
  for (Codec c : {Codec::kRaw, Codec::kFp16, Codec::kInt8, Codec::kTopk}) {
    const Tensors t = {{1.0f, std::numeric_limits<float>::quiet_NaN()}};
    EXPECT_THROW(encode(spans(t), {c}), Error) << codec_name(c);
  }
}

TEST(CompressionEncode, EncodedSizeIsTheSizeOfTheEncoding) {
  const std::vector<std::size_t> sizes = {1000, 3, 0, 257, 1};
  const Tensors t = random_tensors(6, sizes);
  for (Codec c : {Codec::kRaw, Codec::kFp16, Codec::kInt8, Codec::kTopk}) {
    EncodeOptions o{c};
    o.topk_fraction = 0.07;
    EXPECT_EQ(encoded_size(sizes, o), encode(spans(t), o).size()) << codec_name(c);
  }
}

// --- malformed payloads ------------------------------------------------------

std::string corruption_of(const std::string& bytes, const Tensors& layout) {
  try {
    decode_like(bytes, layout);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "decoded";
  return "";
}

template <typename T>
void poke(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

const Tensors kLayout = {{1.0f, -2.0f, 3.0f, 0.5f, 0.25f, -4.0f, 0.0f, 1.5f}, {7.0f, 8.0f}};
constexpr std::size_t kHead = 12;  // magic, version, codec, flags, count

TEST(CompressionDecode, EveryTruncationIsRefused) {
  for (Codec c : {Codec::kRaw, Codec::kFp16, Codec::kInt8, Codec::kTopk}) {
    EncodeOptions o{c};
    o.topk_fraction = 0.25;
    const std::string bytes = encode(spans(kLayout), o);
    for (std::size_t n = 0; n < bytes.size(); ++n) corruption_of(bytes.substr(0, n), kLayout);
    corruption_of(bytes + '\0', kLayout);  // trailing bytes
  }
}

TEST(CompressionDecode, RefusesALayoutThatIsNotTheModels) {
  const std::string bytes = encode(spans(kLayout), {Codec::kFp16});
  EXPECT_NE(corruption_of(bytes, {kLayout[0]}).find("2 tensors, the model has 1"), std::string::npos);
  EXPECT_NE(corruption_of(bytes, {kLayout[0], {1.0f}}).find("tensor 1: 2 elements, the model's tensor has 1"),
            std::string::npos);
}

TEST(CompressionDecode, RefusesBadTopkIndices) {
  EncodeOptions o{Codec::kTopk};
  o.topk_fraction = 0.25;  // 2 of 8 (indices 2, 5), 1 of 2
  const std::string good = encode(spans(kLayout), o);
  const std::size_t k_at = kHead + 8, idx_at = k_at + 8;
  {
    std::string b = good;
    poke<std::uint32_t>(b, idx_at + 4, 8);
    EXPECT_NE(corruption_of(b, kLayout).find("out of range"), std::string::npos);
  }
  {
    std::string b = good;
    poke<std::uint32_t>(b, idx_at + 4, 2);
    EXPECT_NE(corruption_of(b, kLayout).find("strictly increasing"), std::string::npos);
  }
  {
    std::string b = good;
    poke<std::uint32_t>(b, idx_at, 7);
    EXPECT_NE(corruption_of(b, kLayout).find("strictly increasing"), std::string::npos);
  }
  {
    std::string b = good;
    poke<std::uint64_t>(b, k_at, 9);
    EXPECT_NE(corruption_of(b, kLayout).find("topk count 9 exceeds"), std::string::npos);
  }
  {
    std::string b = good;
    poke<std::uint64_t>(b, k_at, 3);  // count mismatch: the bytes hold 2 entries
    corruption_of(b, kLayout);
  }
  {
    std::string b = good;
    poke<float>(b, idx_at + 8, std::numeric_limits<float>::quiet_NaN());
    EXPECT_NE(corruption_of(b, kLayout).find("not finite"), std::string::npos);
  }
}

TEST(CompressionDecode, RefusesBadInt8Scales) {
  const std::string good = encode(spans(kLayout), {Codec::kInt8});
  const std::size_t chunk_at = kHead + 8, scale_at = chunk_at + 4;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f}) {
    std::string b = good;
    poke<float>(b, scale_at, bad);
    EXPECT_NE(corruption_of(b, kLayout).find("int8 scale of chunk 0"), std::string::npos);
  }
  std::string b = good;
  poke<std::uint32_t>(b, chunk_at, 0);
  EXPECT_NE(corruption_of(b, kLayout).find("int8 chunk 0"), std::string::npos);
  b = good;
  poke<float>(b, scale_at, std::numeric_limits<float>::max());  // finite, but q * scale overflows
  EXPECT_NE(corruption_of(b, kLayout).find("not finite"), std::string::npos);
}

TEST(CompressionDecode, RefusesNonFiniteValues) {
  std::string b = encode(spans(kLayout), {Codec::kFp16});
  poke<std::uint16_t>(b, kHead + 8, 0x7c00);
  EXPECT_NE(corruption_of(b, kLayout).find("fp16 value at element 0"), std::string::npos);
  b = encode(spans(kLayout), {Codec::kRaw});
  poke<float>(b, kHead + 8 + 4, std::numeric_limits<float>::infinity());
  EXPECT_NE(corruption_of(b, kLayout).find("element 1 is not finite"), std::string::npos);
}

TEST(CompressionDecode, RefusesAnotherFormatVersionOrCodec) {
  const std::string good = encode(spans(kLayout), {Codec::kFp16});
  std::string b = good;
  b[0] = 'X';
  EXPECT_NE(corruption_of(b, kLayout).find("not an FTCU payload"), std::string::npos);
  b = good;
  poke<std::uint16_t>(b, 4, 2);
  try {
    decode_like(b, kLayout);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos);
  }
  b = good;
  b[6] = 9;
  EXPECT_THROW(decode_like(b, kLayout), Error);
  b = good;
  b[7] = 1;
  EXPECT_NE(corruption_of(b, kLayout).find("flags"), std::string::npos);
}

}  // namespace
}  // namespace fedtrack::compression
