// Shamir secret sharing over the prime field GF(2^521 - 1), for the SecAgg+
// protocol's 32-byte secrets (self-mask seeds and X25519 secret keys).
//
// A share is (x, y): x is the holder's non-zero secure id, y = f(x) for a
// polynomial f of degree threshold-1 with f(0) = the secret and the other
// coefficients drawn from libsodium's CSPRNG, so any threshold-1 shares are
// uniformly distributed whatever the secret. The field is far larger than
// the secrets (521 vs at most 512 bits), which is what lets combine() detect
// a wrong share: a wrong y moves the interpolated f(0) to a random field
// element, which is a valid secret (< 2^(8*size)) with probability < 2^-265.
// combine() rebuilds from the first `threshold` shares; only when that
// fails does it check the others against each other to locate a single
// wrong share and rebuild without it.
// Torch-free; thread-safe (no shared state besides libsodium's RNG).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fedtrack::secagg {

inline constexpr std::size_t kShareValueBytes = 66;  // 521 bits, little-endian
inline constexpr std::size_t kEncodedShareBytes = 4 + kShareValueBytes;
inline constexpr std::size_t kMaxSecretBytes = 64;

struct Share {
  std::uint32_t x = 0;
  std::array<std::uint8_t, kShareValueBytes> y{};
};

// Splits `secret` (1..64 bytes) into one share per x in `xs` (distinct,
// non-zero), any `threshold` of which rebuild it. Error(kInvalidArgument) on
// a bad threshold or x list.
std::vector<Share> shamir_split(std::string_view secret, std::uint32_t threshold,
                                const std::vector<std::uint32_t>& xs);

// The secret of `secret_size` bytes from at least `threshold` shares.
// Error(kCorruption) naming `what` when there are too few distinct shares, a
// duplicate x, or the shares do not lie on one polynomial of degree
// threshold-1 whose f(0) fits in `secret_size` bytes (a wrong share). When
// the first `threshold` shares hold exactly one wrong share and there are
// more, it is left out and its x reported through `bad_x` (if not null).
std::string shamir_combine(const std::vector<Share>& shares, std::uint32_t threshold,
                           std::size_t secret_size, const std::string& what,
                           std::vector<std::uint32_t>* bad_x = nullptr);

// x (u32 LE) + y (66 bytes LE). decode refuses a wrong length, x = 0 and
// y >= 2^521 - 1 with Error(kCorruption) naming `what`.
std::string encode_share(const Share& share);
Share decode_share(std::string_view bytes, const std::string& what);

}  // namespace fedtrack::secagg
