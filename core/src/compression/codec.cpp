// The FTCU codecs (fedtrack/core/compression.h).
#include "fedtrack/core/compression.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "byte_codec.h"
#include "fedtrack/core/error.h"

namespace fedtrack::compression {
namespace {

constexpr char kMagic[4] = {'F', 'T', 'C', 'U'};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform double in [0, 1) for element `counter` of a stream.
double uniform(std::uint64_t seed, std::uint64_t counter) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(counter)) >> 11) * 0x1.0p-53;
}

std::string where(std::size_t tensor) { return "compressed update: tensor " + std::to_string(tensor) + ": "; }

void check_finite_input(const FloatSpan& t, std::size_t tensor) {
  for (std::size_t i = 0; i < t.size; ++i) {
    if (!std::isfinite(t.data[i])) {
      throw Error::invalid_argument("cannot compress tensor " + std::to_string(tensor) + ": element " +
                                    std::to_string(i) + " is not finite");
    }
  }
}

template <typename T>
void put_array(ByteWriter& w, const T* data, std::size_t n) {
  w.append(std::string_view(reinterpret_cast<const char*>(data), n * sizeof(T)));
}

void encode_fp16(ByteWriter& w, const FloatSpan& t, std::size_t tensor) {
  std::vector<std::uint16_t> halves(t.size);
  for (std::size_t i = 0; i < t.size; ++i) {
    halves[i] = float_to_half(t.data[i]);
    if ((halves[i] & 0x7fffu) == 0x7c00u) {
      throw Error::invalid_argument("cannot compress tensor " + std::to_string(tensor) + " to fp16: element " +
                                    std::to_string(i) + " (" + std::to_string(t.data[i]) +
                                    ") is beyond fp16's range (65504)");
    }
  }
  put_array(w, halves.data(), halves.size());
}

void encode_int8(ByteWriter& w, const FloatSpan& t, std::uint32_t chunk, std::uint64_t seed) {
  w.put<std::uint32_t>(chunk);
  const std::size_t chunks = (t.size + chunk - 1) / chunk;
  std::vector<float> scales(chunks);
  std::vector<std::int8_t> q(t.size);
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * chunk, end = std::min(t.size, begin + chunk);
    float max_abs = 0;
    for (std::size_t i = begin; i < end; ++i) max_abs = std::max(max_abs, std::fabs(t.data[i]));
    const float scale = max_abs / 127.0f;
    scales[c] = scale;
    for (std::size_t i = begin; i < end; ++i) {
      if (scale == 0) {
        q[i] = 0;
        continue;
      }
      // Stochastic rounding: floor(v) + 1 with probability v - floor(v), so E[q] = v.
      const double v = static_cast<double>(t.data[i]) / static_cast<double>(scale);
      const double lo = std::floor(v);
      double r = lo + (uniform(seed, i) < v - lo ? 1.0 : 0.0);
      r = std::clamp(r, -127.0, 127.0);
      q[i] = static_cast<std::int8_t>(r);
    }
  }
  put_array(w, scales.data(), scales.size());
  put_array(w, q.data(), q.size());
}

void encode_topk(ByteWriter& w, const FloatSpan& t, double fraction, std::size_t tensor) {
  if (t.size > 0xffffffffull) {
    throw Error::invalid_argument("cannot compress tensor " + std::to_string(tensor) + " with topk: " +
                                  std::to_string(t.size) + " elements (at most 2^32 - 1)");
  }
  const std::size_t k = topk_count(t.size, fraction);
  std::vector<std::uint32_t> order(t.size);
  std::iota(order.begin(), order.end(), 0u);
  // Largest magnitude first; ties go to the lower index, so the choice is deterministic.
  auto larger = [&](std::uint32_t a, std::uint32_t b) {
    const float ma = std::fabs(t.data[a]), mb = std::fabs(t.data[b]);
    return ma != mb ? ma > mb : a < b;
  };
  if (k < t.size) std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), larger);
  order.resize(k);
  std::sort(order.begin(), order.end());
  std::vector<float> values(k);
  for (std::size_t j = 0; j < k; ++j) values[j] = t.data[order[j]];
  w.put<std::uint64_t>(k);
  put_array(w, order.data(), k);
  put_array(w, values.data(), k);
}

// Reads n values of T from the reader into a vector without trusting n
// beyond what the bytes hold (the caller has bounded n by the layout).
template <typename T>
const char* take_array(ByteReader& r, std::uint64_t n, const char* what) {
  return r.take(n * sizeof(T), what).data();
}

void decode_tensor(ByteReader& r, Codec codec, const MutableFloatSpan& out, std::size_t tensor) {
  const std::size_t n = out.size;
  auto bad = [&](const std::string& why) { return Error::corruption(where(tensor) + why); };
  auto finite_or_throw = [&](float v, std::size_t i, const char* what) {
    if (!std::isfinite(v)) throw bad(std::string(what) + " at element " + std::to_string(i) + " is not finite");
  };
  switch (codec) {
    case Codec::kRaw: {
      const char* p = take_array<float>(r, n, "raw values");
      if (n > 0) std::memcpy(out.data, p, n * sizeof(float));
      for (std::size_t i = 0; i < n; ++i) finite_or_throw(out.data[i], i, "value");
      return;
    }
    case Codec::kFp16: {
      const char* p = take_array<std::uint16_t>(r, n, "fp16 values");
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        if ((h & 0x7c00u) == 0x7c00u) throw bad("fp16 value at element " + std::to_string(i) + " is not finite");
        out.data[i] = half_to_float(h);
      }
      return;
    }
    case Codec::kInt8: {
      const auto chunk = r.get<std::uint32_t>("int8 chunk");
      if (chunk == 0 || chunk > kMaxInt8Chunk) {
        throw bad("int8 chunk " + std::to_string(chunk) + " is outside 1.." + std::to_string(kMaxInt8Chunk));
      }
      const std::size_t chunks = (n + chunk - 1) / chunk;
      const char* sp = take_array<float>(r, chunks, "int8 scales");
      const char* qp = take_array<std::int8_t>(r, n, "int8 values");
      for (std::size_t c = 0; c < chunks; ++c) {
        float scale;
        std::memcpy(&scale, sp + 4 * c, 4);
        if (!std::isfinite(scale) || scale < 0) {
          throw bad("int8 scale of chunk " + std::to_string(c) + " is " + std::to_string(scale) +
                    " (must be finite and >= 0)");
        }
        const std::size_t begin = c * chunk, end = std::min<std::size_t>(n, begin + chunk);
        for (std::size_t i = begin; i < end; ++i) {
          out.data[i] = static_cast<float>(static_cast<std::int8_t>(qp[i])) * scale;
          finite_or_throw(out.data[i], i, "int8 value times scale");
        }
      }
      return;
    }
    case Codec::kTopk: {
      const auto k = r.get<std::uint64_t>("topk count");
      if (k > n) throw bad("topk count " + std::to_string(k) + " exceeds the tensor's " + std::to_string(n) + " elements");
      const char* ip = take_array<std::uint32_t>(r, k, "topk indices");
      const char* vp = take_array<float>(r, k, "topk values");
      std::fill(out.data, out.data + n, 0.0f);
      std::int64_t previous = -1;
      for (std::uint64_t j = 0; j < k; ++j) {
        std::uint32_t index;
        float value;
        std::memcpy(&index, ip + 4 * j, 4);
        std::memcpy(&value, vp + 4 * j, 4);
        if (index >= n) {
          throw bad("topk index " + std::to_string(index) + " (entry " + std::to_string(j) + ") is out of range (" +
                    std::to_string(n) + " elements)");
        }
        if (static_cast<std::int64_t>(index) <= previous) {
          throw bad("topk index " + std::to_string(index) + " (entry " + std::to_string(j) +
                    ") is not above the previous one (indices must be strictly increasing)");
        }
        previous = index;
        finite_or_throw(value, index, "topk value");
        out.data[index] = value;
      }
      return;
    }
  }
}

Codec read_head(ByteReader& r) {
  const std::string_view magic = r.take(4, "magic");
  if (std::memcmp(magic.data(), kMagic, 4) != 0) throw Error::corruption("compressed update: not an FTCU payload");
  const auto version = r.get<std::uint16_t>("version");
  if (version != kFormatVersion) {
    throw Error::invalid_argument("compressed update: version " + std::to_string(version) +
                                  " is not supported (this build reads " + std::to_string(kFormatVersion) + ")");
  }
  const auto codec = r.get<std::uint8_t>("codec");
  if (codec > static_cast<std::uint8_t>(Codec::kTopk)) {
    throw Error::invalid_argument("compressed update: unknown codec " + std::to_string(codec));
  }
  const auto flags = r.get<std::uint8_t>("flags");
  if (flags != 0) throw Error::corruption("compressed update: flags " + std::to_string(flags) + " must be 0");
  return static_cast<Codec>(codec);
}

}  // namespace

const char* codec_name(Codec codec) {
  switch (codec) {
    case Codec::kRaw: return "raw";
    case Codec::kFp16: return "fp16";
    case Codec::kInt8: return "int8";
    case Codec::kTopk: return "topk";
  }
  return "?";
}

std::optional<Codec> codec_from_name(std::string_view name) {
  if (name == "none" || name == "raw") return Codec::kRaw;
  if (name == "fp16") return Codec::kFp16;
  if (name == "int8") return Codec::kInt8;
  if (name == "topk") return Codec::kTopk;
  return std::nullopt;
}

std::size_t topk_count(std::size_t numel, double fraction) {
  if (numel == 0) return 0;
  const double want = std::ceil(fraction * static_cast<double>(numel));
  if (!(want >= 1)) return 1;
  return want >= static_cast<double>(numel) ? numel : static_cast<std::size_t>(want);
}

std::uint16_t float_to_half(float value) {
  std::uint32_t x;
  std::memcpy(&x, &value, 4);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u);  // NaN, infinity
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504: infinity
  if (abs < 0x38800000u) {
    // A half subnormal (or 0): value / 2^-24, rounded to nearest even.
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: rounds to 0
    const std::uint32_t mantissa = (abs & 0x007fffffu) | 0x00800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24 for exponents -15..-25
    const std::uint32_t shifted = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1);
    const std::uint32_t half_way = 1u << (shift - 1);
    const bool up = rest > half_way || (rest == half_way && (shifted & 1u));
    return sign | static_cast<std::uint16_t>(shifted + (up ? 1 : 0));
  }
  // Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
  std::uint32_t h = ((abs - 0x38000000u) >> 13);
  const std::uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return sign | static_cast<std::uint16_t>(h);
}

float half_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  std::uint32_t mantissa = half & 0x3ffu;
  std::uint32_t x;
  if (exponent == 0x1f) {
    x = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    x = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    x = sign;
  } else {
    int e = 113;  // normalise the subnormal
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      --e;
    }
    x = sign | (static_cast<std::uint32_t>(e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &x, 4);
  return out;
}

std::uint64_t derive_seed(std::uint64_t job_seed, std::int64_t round, std::string_view client,
                          std::string_view direction) {
  std::uint64_t h = splitmix64(job_seed ^ 0x46544355ull);  // "FTCU"
  h = splitmix64(h ^ static_cast<std::uint64_t>(round));
  for (unsigned char c : client) h = splitmix64(h ^ c);
  h = splitmix64(h ^ 0xffu);
  for (unsigned char c : direction) h = splitmix64(h ^ c);
  return h;
}

std::string encode(const std::vector<FloatSpan>& tensors, const EncodeOptions& options) {
  if (options.codec == Codec::kTopk && !(options.topk_fraction > 0 && options.topk_fraction <= 1)) {
    throw Error::invalid_argument("topk fraction " + std::to_string(options.topk_fraction) + " is outside (0, 1]");
  }
  if (options.codec == Codec::kInt8 && (options.int8_chunk == 0 || options.int8_chunk > kMaxInt8Chunk)) {
    throw Error::invalid_argument("int8 chunk " + std::to_string(options.int8_chunk) + " is outside 1.." +
                                  std::to_string(kMaxInt8Chunk));
  }
  ByteWriter w;
  w.append(std::string_view(kMagic, 4));
  w.put<std::uint16_t>(kFormatVersion);
  w.put<std::uint8_t>(static_cast<std::uint8_t>(options.codec));
  w.put<std::uint8_t>(0);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(tensors.size()));
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const FloatSpan& span = tensors[t];
    check_finite_input(span, t);
    w.put<std::uint64_t>(span.size);
    switch (options.codec) {
      case Codec::kRaw: put_array(w, span.data, span.size); break;
      case Codec::kFp16: encode_fp16(w, span, t); break;
      case Codec::kInt8: encode_int8(w, span, options.int8_chunk, splitmix64(options.seed ^ (t + 1))); break;
      case Codec::kTopk: encode_topk(w, span, options.topk_fraction, t); break;
    }
  }
  return w.take();
}

std::uint64_t encoded_size(const std::vector<std::size_t>& numels, const EncodeOptions& options) {
  std::uint64_t size = 12;
  for (const std::uint64_t n : numels) {
    size += 8;
    switch (options.codec) {
      case Codec::kRaw: size += 4 * n; break;
      case Codec::kFp16: size += 2 * n; break;
      case Codec::kInt8: size += 4 + 4 * ((n + options.int8_chunk - 1) / options.int8_chunk) + n; break;
      case Codec::kTopk: size += 8 + 8 * topk_count(n, options.topk_fraction); break;
    }
  }
  return size;
}

Codec payload_codec(std::string_view bytes) {
  ByteReader r(bytes, "compressed update");
  return read_head(r);
}

void decode(std::string_view bytes, const std::vector<MutableFloatSpan>& out) {
  ByteReader r(bytes, "compressed update");
  const Codec codec = read_head(r);
  const auto count = r.get<std::uint32_t>("tensor count");
  if (count != out.size()) {
    throw Error::corruption("compressed update: " + std::to_string(count) + " tensors, the model has " +
                            std::to_string(out.size()));
  }
  for (std::size_t t = 0; t < out.size(); ++t) {
    const auto numel = r.get<std::uint64_t>("numel");
    if (numel != out[t].size) {
      throw Error::corruption(where(t) + std::to_string(numel) + " elements, the model's tensor has " +
                              std::to_string(out[t].size));
    }
    decode_tensor(r, codec, out[t], t);
  }
  r.expect_end();
}

std::string Residual::encode(const std::vector<FloatSpan>& update, const EncodeOptions& options) {
  if (values_.empty()) {
    for (const auto& t : update) values_.emplace_back(t.size, 0.0f);
  }
  if (values_.size() != update.size()) {
    throw Error::invalid_argument("error feedback: the update has " + std::to_string(update.size()) +
                                  " tensors, the residual " + std::to_string(values_.size()));
  }
  std::vector<FloatSpan> sums;
  for (std::size_t t = 0; t < update.size(); ++t) {
    auto& acc = values_[t];
    if (acc.size() != update[t].size) {
      throw Error::invalid_argument("error feedback: tensor " + std::to_string(t) + " has " +
                                    std::to_string(update[t].size) + " elements, its residual " +
                                    std::to_string(acc.size()));
    }
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = update[t].data[i] + acc[i];  // A = u + r
    sums.push_back({acc.data(), acc.size()});
  }
  std::string bytes;
  try {
    bytes = compression::encode(sums, options);
  } catch (...) {
    values_.clear();  // A may hold a non-finite sum: start over rather than carry it
    throw;
  }
  std::vector<MutableFloatSpan> out;
  std::vector<std::vector<float>> decoded(update.size());
  for (std::size_t t = 0; t < update.size(); ++t) {
    decoded[t].resize(values_[t].size());
    out.push_back({decoded[t].data(), decoded[t].size()});
  }
  decode(bytes, out);
  for (std::size_t t = 0; t < update.size(); ++t) {
    auto& acc = values_[t];
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = acc[i] - decoded[t][i];  // r = A - sent
  }
  return bytes;
}

}  // namespace fedtrack::compression
