// Shamir secret sharing over the prime field GF(2^521 - 1), for the SecAgg+
// protocol's 32-byte secrets (self-mask seeds and X25519 secret keys).
//
// A share is (x, y): x is the holder's non-zero secure id, y = f(x) for a
// polynomial f of degree threshold-1 with f(0) = the secret and the other
// coefficients drawn from libsodium's CSPRNG, so any threshold-1 shares are
// uniformly distributed whatever the secret. What is shared is the secret
// followed by a 16-byte BLAKE2b tag of it, which is what lets combine()
// detect a wrong share: a wrong y (even a small, structured change, which
// the Lagrange weights may carry into f(0) unchanged) yields a value whose
// tag does not match, except with probability 2^-128. combine() rebuilds
// from the first `threshold` shares; only when that fails does it try
// leaving each share out, to locate a single wrong one and rebuild without it.
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
inline constexpr std::size_t kMaxSecretBytes = 48;  // + a 16-byte tag < 2^521

struct Share {
  std::uint32_t x = 0;
  std::array<std::uint8_t, kShareValueBytes> y{};
};

// Splits `secret` (1..48 bytes) into one share per x in `xs` (distinct,
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
