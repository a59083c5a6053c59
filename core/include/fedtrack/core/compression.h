// Update compression (job keys compression.*): the codecs that shrink what a
// round moves — fp16, int8 with per-chunk scales and stochastic rounding,
// top-k sparsification with error feedback — on flat float32 buffers.
// Torch-free; the runtimes adapt Parameters to spans (compression/
// update_codec.h). Pure functions and one value type (Residual), no shared
// state: thread-safe as long as one Residual is not used from two threads.
//
// Wire encoding ("FTCU", version 1), little-endian:
//
//   "FTCU" | u16 version | u8 codec | u8 flags (0) | u32 tensor count |
//   per tensor: u64 numel | body
//
//   raw  (0): numel x f32
//   fp16 (1): numel x binary16 (IEEE 754 half, round to nearest even)
//   int8 (2): u32 chunk | ceil(numel / chunk) x f32 scale | numel x i8
//             value = q * scale (float32 product)
//   topk (3): u64 k | k x u32 index, strictly increasing, < numel |
//             k x f32 value; every other coordinate is 0
//
// Tensor names and shapes are not sent: both ends know the model's layout,
// and the decoder checks the count and every numel against it. decode()
// reads untrusted bytes: Error(kCorruption) naming the tensor and the field
// for anything ill-formed — truncated, trailing bytes, a count or numel
// that is not the model's, an index out of range, duplicate or unsorted,
// k > numel, a chunk of 0, a NaN / infinite / negative scale, a NaN or
// infinite value — and Error(kInvalidArgument) for a version or codec this
// build does not speak. Its cost is bounded by the expected layout: nothing
// is allocated from a length before the bytes for it are there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fedtrack::compression {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::uint32_t kDefaultInt8Chunk = 256;
inline constexpr std::uint32_t kMaxInt8Chunk = 1u << 20;

enum class Codec : std::uint8_t { kRaw = 0, kFp16 = 1, kInt8 = 2, kTopk = 3 };

// "raw", "fp16", "int8", "topk".
const char* codec_name(Codec codec);
// The job file's names: "none" is kRaw. nullopt for another name.
std::optional<Codec> codec_from_name(std::string_view name);

struct FloatSpan {
  const float* data = nullptr;
  std::size_t size = 0;
};
struct MutableFloatSpan {
  float* data = nullptr;
  std::size_t size = 0;
};

struct EncodeOptions {
  Codec codec = Codec::kRaw;
  double topk_fraction = 0.01;  // topk: in (0, 1]
  std::uint32_t int8_chunk = kDefaultInt8Chunk;
  std::uint64_t seed = 0;  // int8: the stochastic rounding's stream (derive_seed)
};

// Encodes `tensors`. Error(kInvalidArgument) for a NaN or infinite value, a
// value fp16 cannot hold (|x| rounds past 65504), a tensor of 2^32 or more
// elements under topk, a fraction outside (0, 1] or a chunk outside
// 1..kMaxInt8Chunk. Deterministic: the same input and options give the same
// bytes on every run.
std::string encode(const std::vector<FloatSpan>& tensors, const EncodeOptions& options);

// Exactly encode(tensors, options).size() for tensors of these sizes (the
// size of every codec's payload depends only on the layout).
std::uint64_t encoded_size(const std::vector<std::size_t>& numels, const EncodeOptions& options);

// Decodes into `out`, whose sizes are the layout the payload must have.
void decode(std::string_view bytes, const std::vector<MutableFloatSpan>& out);

// The codec a payload says it uses (checks only magic, version and codec).
Codec payload_codec(std::string_view bytes);

// topk: coordinates kept of a tensor of `numel`: ceil(fraction * numel),
// at least 1 (0 for an empty tensor).
std::size_t topk_count(std::size_t numel, double fraction);

// IEEE 754 binary16, round to nearest, ties to even; half_to_float is exact.
// float_to_half of a value past the half range gives infinity (0x7c00).
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t half);

// A 64-bit seed for one direction of one client's round:
// derive_seed(job seed, round, "client-003", "up"). Stable across builds.
std::uint64_t derive_seed(std::uint64_t job_seed, std::int64_t round, std::string_view client, std::string_view direction);

// Error feedback: what a lossy encoding did not send, added to the next
// update. One per client (uplink).
//
// encode(update): per coordinate, in element order, with float32 arithmetic
//   A = update + residual      (residual starts at 0)
//   bytes = compression::encode(A)
//   residual = A - decode(bytes)
// For topk the decoded value is A or 0, so residual is exactly 0 or A and
// sent + residual == A bitwise. Consequently, per coordinate, the value
// sent in a round is the float sum of the updates since that coordinate was
// last sent, accumulated newest-first (u_t + (u_{t-1} + (... + u_s))), and
// the final residual is that sum over the rounds since the last send: the
// sum of what was sent plus the final residual equals the sum of all
// updates when each run between sends is summed in that order.
class Residual {
 public:
  std::string encode(const std::vector<FloatSpan>& update, const EncodeOptions& options);
  // The residual per tensor (empty before the first encode).
  const std::vector<std::vector<float>>& values() const { return values_; }
  void clear() { values_.clear(); }

 private:
  std::vector<std::vector<float>> values_;
};

}  // namespace fedtrack::compression
