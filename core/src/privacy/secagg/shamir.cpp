#include "privacy/secagg/shamir.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "fedtrack/core/error.h"
#include "privacy/secagg/secagg_crypto.h"

namespace fedtrack::secagg {
namespace {

// An element of GF(p), p = 2^521 - 1, as 9 little-endian 64-bit limbs,
// always canonical (< p). The Mersenne prime makes reduction a shift and an
// add: 2^521 = 1 (mod p).
constexpr int kLimbs = 9;
constexpr std::uint64_t kTopMask = 0x1FF;  // bits 512..520 live in limb 8

struct Fe {
  std::uint64_t l[kLimbs] = {};
};

bool is_p(const Fe& a) {
  for (int i = 0; i < kLimbs - 1; ++i) {
    if (a.l[i] != ~std::uint64_t{0}) return false;
  }
  return a.l[kLimbs - 1] == kTopMask;
}

// r < 2^522 (one carry bit above bit 520) -> canonical.
Fe fold(std::uint64_t r[kLimbs]) {
  std::uint64_t carry = r[kLimbs - 1] >> 9;
  r[kLimbs - 1] &= kTopMask;
  for (int i = 0; i < kLimbs && carry != 0; ++i) {
    unsigned __int128 s = static_cast<unsigned __int128>(r[i]) + carry;
    r[i] = static_cast<std::uint64_t>(s);
    carry = static_cast<std::uint64_t>(s >> 64);
  }
  // After adding at most 1 the value is <= 2^521 - 1 + small; fold once more.
  carry = r[kLimbs - 1] >> 9;
  r[kLimbs - 1] &= kTopMask;
  for (int i = 0; i < kLimbs && carry != 0; ++i) {
    unsigned __int128 s = static_cast<unsigned __int128>(r[i]) + carry;
    r[i] = static_cast<std::uint64_t>(s);
    carry = static_cast<std::uint64_t>(s >> 64);
  }
  Fe out;
  std::memcpy(out.l, r, sizeof(out.l));
  if (is_p(out)) out = Fe{};
  return out;
}

Fe fe_from_u64(std::uint64_t v) {
  Fe a;
  a.l[0] = v;
  return a;
}

Fe add(const Fe& a, const Fe& b) {
  std::uint64_t r[kLimbs];
  std::uint64_t carry = 0;
  for (int i = 0; i < kLimbs; ++i) {
    unsigned __int128 s = static_cast<unsigned __int128>(a.l[i]) + b.l[i] + carry;
    r[i] = static_cast<std::uint64_t>(s);
    carry = static_cast<std::uint64_t>(s >> 64);
  }
  return fold(r);
}

// p - a is the bitwise complement within 521 bits.
Fe neg(const Fe& a) {
  Fe r;
  for (int i = 0; i < kLimbs; ++i) r.l[i] = ~a.l[i];
  r.l[kLimbs - 1] &= kTopMask;
  if (is_p(r)) r = Fe{};
  return r;
}

Fe sub(const Fe& a, const Fe& b) { return add(a, neg(b)); }

Fe mul(const Fe& a, const Fe& b) {
  std::uint64_t t[2 * kLimbs + 1] = {};
  for (int i = 0; i < kLimbs; ++i) {
    std::uint64_t carry = 0;
    for (int j = 0; j < kLimbs; ++j) {
      unsigned __int128 s = static_cast<unsigned __int128>(a.l[i]) * b.l[j] + t[i + j] + carry;
      t[i + j] = static_cast<std::uint64_t>(s);
      carry = static_cast<std::uint64_t>(s >> 64);
    }
    t[i + kLimbs] = carry;
  }
  // t = lo + 2^521 * hi  ->  lo + hi (mod p).
  std::uint64_t lo[kLimbs];
  std::uint64_t hi[kLimbs];
  for (int i = 0; i < kLimbs; ++i) {
    lo[i] = t[i];
    hi[i] = (t[i + 8] >> 9) | (t[i + 9] << 55);
  }
  lo[kLimbs - 1] &= kTopMask;
  std::uint64_t r[kLimbs];
  std::uint64_t carry = 0;
  for (int i = 0; i < kLimbs; ++i) {
    unsigned __int128 s = static_cast<unsigned __int128>(lo[i]) + hi[i] + carry;
    r[i] = static_cast<std::uint64_t>(s);
    carry = static_cast<std::uint64_t>(s >> 64);
  }
  return fold(r);
}

bool equal(const Fe& a, const Fe& b) { return std::memcmp(a.l, b.l, sizeof(a.l)) == 0; }

// a^(p-2); p - 2 = 2^521 - 3 has every bit of 0..520 set except bit 1.
Fe inverse(const Fe& a) {
  Fe result = fe_from_u64(1);
  for (int bit = 520; bit >= 0; --bit) {
    result = mul(result, result);
    if (bit != 1) result = mul(result, a);
  }
  return result;
}

Fe from_bytes_le(const std::uint8_t* bytes, std::size_t n) {
  Fe a;
  for (std::size_t i = 0; i < n; ++i) a.l[i / 8] |= static_cast<std::uint64_t>(bytes[i]) << (8 * (i % 8));
  return a;
}

std::array<std::uint8_t, kShareValueBytes> to_bytes(const Fe& a) {
  std::array<std::uint8_t, kShareValueBytes> out{};
  for (std::size_t i = 0; i < kShareValueBytes; ++i) out[i] = static_cast<std::uint8_t>(a.l[i / 8] >> (8 * (i % 8)));
  return out;
}

Fe random_fe() {
  ensure_sodium();
  for (;;) {
    std::uint8_t buf[kShareValueBytes];
    randombytes_buf(buf, sizeof buf);
    buf[kShareValueBytes - 1] &= 0x01;  // 521 bits
    Fe a = from_bytes_le(buf, sizeof buf);
    sodium_memzero(buf, sizeof buf);
    if (!is_p(a)) return a;
  }
}

// L(at) for the polynomial through `points` (distinct x). The Lagrange
// denominators are inverted together (one field inversion per call).
Fe interpolate(const std::vector<std::pair<Fe, Fe>>& points, const Fe& at) {
  const std::size_t n = points.size();
  std::vector<Fe> num(n, fe_from_u64(1)), den(n, fe_from_u64(1));
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t m = 0; m < n; ++m) {
      if (m == j) continue;
      num[j] = mul(num[j], sub(at, points[m].first));
      den[j] = mul(den[j], sub(points[j].first, points[m].first));
    }
  }
  // Batch inversion: prefix products, one inverse, then walk back.
  std::vector<Fe> prefix(n);
  Fe running = fe_from_u64(1);
  for (std::size_t j = 0; j < n; ++j) {
    prefix[j] = running;
    running = mul(running, den[j]);
  }
  Fe inv = inverse(running);
  Fe sum;
  for (std::size_t j = n; j-- > 0;) {
    Fe inv_den = mul(inv, prefix[j]);
    inv = mul(inv, den[j]);
    sum = add(sum, mul(points[j].second, mul(num[j], inv_den)));
  }
  return sum;
}

std::pair<Fe, Fe> point(const Share& s) { return {fe_from_u64(s.x), from_bytes_le(s.y.data(), s.y.size())}; }

constexpr std::size_t kTagBytes = 16;

// What is shared: the secret, then a BLAKE2b tag of it.
std::string tagged(std::string_view secret) {
  ensure_sodium();
  std::string out(secret);
  out.resize(secret.size() + kTagBytes);
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()) + secret.size(), kTagBytes,
                     reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), nullptr, 0);
  return out;
}

// Whether f(0) of the polynomial through the first `threshold` of `points`
// explains every other point, fits in secret_size + tag bytes and carries
// the secret's tag.
bool consistent(const std::vector<std::pair<Fe, Fe>>& points, std::uint32_t threshold, std::size_t secret_size,
                Fe* secret) {
  std::vector<std::pair<Fe, Fe>> basis(points.begin(), points.begin() + threshold);
  for (std::size_t k = threshold; k < points.size(); ++k) {
    if (!equal(interpolate(basis, points[k].first), points[k].second)) return false;
  }
  *secret = interpolate(basis, Fe{});
  auto bytes = to_bytes(*secret);
  for (std::size_t i = secret_size + kTagBytes; i < bytes.size(); ++i) {
    if (bytes[i] != 0) return false;
  }
  const std::string expected =
      tagged(std::string_view(reinterpret_cast<const char*>(bytes.data()), secret_size));
  const bool ok = sodium_memcmp(expected.data() + secret_size, bytes.data() + secret_size, kTagBytes) == 0;
  sodium_memzero(bytes.data(), bytes.size());
  return ok;
}

}  // namespace

std::vector<Share> shamir_split(std::string_view secret, std::uint32_t threshold,
                                const std::vector<std::uint32_t>& xs) {
  if (secret.empty() || secret.size() > kMaxSecretBytes) {
    throw Error::invalid_argument("shamir: a secret must be 1.." + std::to_string(kMaxSecretBytes) + " bytes, not " +
                                  std::to_string(secret.size()));
  }
  if (threshold < 1 || threshold > xs.size()) {
    throw Error::invalid_argument("shamir: threshold " + std::to_string(threshold) + " with " +
                                  std::to_string(xs.size()) + " shares");
  }
  std::set<std::uint32_t> seen;
  for (auto x : xs) {
    if (x == 0 || !seen.insert(x).second) {
      throw Error::invalid_argument("shamir: share x " + std::to_string(x) + " is zero or repeated");
    }
  }
  std::vector<Fe> coefficients(threshold);
  std::string constant = tagged(secret);
  coefficients[0] = from_bytes_le(reinterpret_cast<const std::uint8_t*>(constant.data()), constant.size());
  sodium_memzero(constant.data(), constant.size());
  for (std::uint32_t i = 1; i < threshold; ++i) coefficients[i] = random_fe();
  std::vector<Share> shares;
  shares.reserve(xs.size());
  for (auto x : xs) {
    Fe at = fe_from_u64(x);
    Fe y;
    for (std::size_t i = coefficients.size(); i-- > 0;) y = add(mul(y, at), coefficients[i]);
    shares.push_back({x, to_bytes(y)});
  }
  for (auto& c : coefficients) sodium_memzero(c.l, sizeof c.l);
  return shares;
}

std::string shamir_combine(const std::vector<Share>& shares, std::uint32_t threshold, std::size_t secret_size,
                           const std::string& what, std::vector<std::uint32_t>* bad_x) {
  if (secret_size == 0 || secret_size > kMaxSecretBytes || threshold < 1) {
    throw Error::invalid_argument("shamir: bad secret size or threshold for " + what);
  }
  std::set<std::uint32_t> seen;
  std::vector<std::pair<Fe, Fe>> points;
  for (const auto& s : shares) {
    if (s.x == 0 || !seen.insert(s.x).second) {
      throw Error::corruption(what + ": share x " + std::to_string(s.x) + " is zero or repeated");
    }
    points.push_back(point(s));
  }
  if (points.size() < threshold) {
    throw Error::corruption(what + ": " + std::to_string(points.size()) + " shares, " + std::to_string(threshold) +
                            " needed");
  }
  Fe secret;
  // Fast path: the first `threshold` shares. A wrong one among them moves
  // f(0) out of the secret's range (detected below); a wrong one beyond them
  // is not used.
  std::vector<std::pair<Fe, Fe>> first(points.begin(), points.begin() + threshold);
  bool ok = consistent(first, threshold, secret_size, &secret);
  if (!ok && points.size() > threshold) {
    // Locate a single wrong share: the rest must then agree.
    for (std::size_t skip = 0; skip < points.size() && !ok; ++skip) {
      auto rest = points;
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(skip));
      if (consistent(rest, threshold, secret_size, &secret)) {
        ok = true;
        if (bad_x != nullptr) bad_x->push_back(shares[skip].x);
      }
    }
  }
  if (!ok) throw Error::corruption(what + ": the shares do not rebuild a secret (a wrong share)");
  auto bytes = to_bytes(secret);
  std::string out(reinterpret_cast<const char*>(bytes.data()), secret_size);
  sodium_memzero(bytes.data(), bytes.size());
  return out;
}

std::string encode_share(const Share& share) {
  std::string out(kEncodedShareBytes, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(share.x >> (8 * i));
  std::memcpy(out.data() + 4, share.y.data(), kShareValueBytes);
  return out;
}

Share decode_share(std::string_view bytes, const std::string& what) {
  if (bytes.size() != kEncodedShareBytes) {
    throw Error::corruption(what + ": a share is " + std::to_string(bytes.size()) + " bytes, not " +
                            std::to_string(kEncodedShareBytes));
  }
  Share share;
  for (int i = 0; i < 4; ++i) share.x |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[i])) << (8 * i);
  std::memcpy(share.y.data(), bytes.data() + 4, kShareValueBytes);
  Fe y = from_bytes_le(share.y.data(), share.y.size());
  bool in_field = (share.y[kShareValueBytes - 1] & 0xFE) == 0 && !is_p(y);
  if (share.x == 0 || !in_field) {
    throw Error::corruption(what + ": a share has x = 0 or a value outside the field");
  }
  return share;
}

}  // namespace fedtrack::secagg
