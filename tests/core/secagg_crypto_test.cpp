// SecAgg+ building blocks: Shamir sharing over GF(2^521-1), X25519 agreement,
// the AEAD that seals relayed shares, the ChaCha20 mask PRG, quantization.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "fedtrack/core/error.h"
#include "privacy/secagg/quantization.h"
#include "privacy/secagg/secagg_crypto.h"
#include "privacy/secagg/shamir.h"

using namespace fedtrack;
using namespace fedtrack::secagg;

namespace {

std::string secret_of(std::uint8_t seed, std::size_t n = 32) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed * 31 + i * 7 + (i == n - 1 ? 0xFF : 0));
  return s;
}

std::vector<std::uint32_t> ids(std::uint32_t n) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 1; i <= n; ++i) out.push_back(i * 3 + 1);
  return out;
}

}  // namespace

TEST(Shamir, AnyThresholdSubsetRebuildsTheSecret) {
  const std::string secret = secret_of(5);
  auto shares = shamir_split(secret, 4, ids(7));
  ASSERT_EQ(shares.size(), 7u);
  std::mt19937 rng(1);
  for (int trial = 0; trial < 30; ++trial) {
    auto subset = shares;
    std::shuffle(subset.begin(), subset.end(), rng);
    subset.resize(4 + trial % 4);
    EXPECT_EQ(shamir_combine(subset, 4, secret.size(), "test"), secret);
  }
  // An all-0xFF 48-byte secret (the largest) and a 1-byte one.
  std::string big(48, '\xFF');
  EXPECT_EQ(shamir_combine(shamir_split(big, 3, ids(5)), 3, 48, "big"), big);
  EXPECT_THROW(shamir_split(std::string(49, 'x'), 3, ids(5)), Error);
  EXPECT_EQ(shamir_combine(shamir_split("x", 2, {1, 2}), 2, 1, "one byte"), "x");
}

TEST(Shamir, FewerThanThresholdSharesAreRefused) {
  auto shares = shamir_split(secret_of(1), 3, ids(5));
  shares.resize(2);
  EXPECT_THROW(shamir_combine(shares, 3, 32, "test"), Error);
}

TEST(Shamir, CoefficientsAreRandomSoThresholdMinusOneSharesVary) {
  // The same secret shared twice: every share differs (fresh random
  // coefficients), and the bytes of threshold-1 shares look uniform: across
  // many sharings of one fixed secret the first share's low byte takes
  // (nearly) every value.
  const std::string secret = secret_of(9);
  auto a = shamir_split(secret, 3, ids(4));
  auto b = shamir_split(secret, 3, ids(4));
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NE(a[i].y, b[i].y);
  std::set<std::uint8_t> low;
  for (int i = 0; i < 2000; ++i) low.insert(shamir_split(secret, 3, {1, 2, 3})[0].y[0]);
  EXPECT_GT(low.size(), 240u);
  // With threshold 1 the polynomial is constant: a share *is* the secret —
  // the check that the random terms above are what hides it.
  auto constant = shamir_split(secret, 1, {1});
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(constant[0].y.data()), 32), secret);
}

TEST(Shamir, AWrongShareIsDetectedAndLocated) {
  const std::string secret = secret_of(3);
  auto shares = shamir_split(secret, 3, ids(5));
  auto bad = shares;
  bad[1].y[10] ^= 0x40;
  // Exactly threshold shares: the rebuilt value is a random field element,
  // which does not fit in 32 bytes.
  std::vector<Share> three(bad.begin(), bad.begin() + 3);
  EXPECT_THROW(shamir_combine(three, 3, 32, "test"), Error);
  // More than threshold: the wrong one is found and left out.
  std::vector<std::uint32_t> located;
  EXPECT_EQ(shamir_combine(bad, 3, 32, "test", &located), secret);
  EXPECT_EQ(located, std::vector<std::uint32_t>{bad[1].x});
  // A small, structured change: at x = 1, 2, 3 the Lagrange weight of the
  // third share at 0 is exactly 1, so flipping its lowest bit moves the
  // secret's lowest bit and nothing else — only the tag can tell.
  auto small = shamir_split(secret, 3, {1, 2, 3});
  small[2].y[0] ^= 0x01;
  EXPECT_THROW(shamir_combine(small, 3, 32, "test"), Error);
  // A duplicate x is refused.
  auto dup = shares;
  dup[2].x = dup[0].x;
  EXPECT_THROW(shamir_combine(dup, 3, 32, "test"), Error);
}

TEST(Shamir, EncodingRefusesValuesOutsideTheField) {
  auto share = shamir_split(secret_of(2), 2, {7, 8})[0];
  auto bytes = encode_share(share);
  ASSERT_EQ(bytes.size(), kEncodedShareBytes);
  auto back = decode_share(bytes, "test");
  EXPECT_EQ(back.x, 7u);
  EXPECT_EQ(back.y, share.y);
  std::string p(kEncodedShareBytes, '\xFF');  // x = 2^32-1, y >= 2^521
  EXPECT_THROW(decode_share(p, "test"), Error);
  std::string exact_p = bytes;  // y = 2^521 - 1 itself
  for (std::size_t i = 4; i < kEncodedShareBytes - 1; ++i) exact_p[i] = '\xFF';
  exact_p[kEncodedShareBytes - 1] = '\x01';
  EXPECT_THROW(decode_share(exact_p, "test"), Error);
  std::string zero_x = bytes;
  zero_x[0] = zero_x[1] = zero_x[2] = zero_x[3] = 0;
  EXPECT_THROW(decode_share(zero_x, "test"), Error);
  EXPECT_THROW(decode_share(bytes.substr(1), "test"), Error);
}

TEST(SecAggCrypto, AgreementIsSymmetricAndDistinct) {
  auto a = generate_key_pair();
  auto b = generate_key_pair();
  auto c = generate_key_pair();
  EXPECT_EQ(agree(a.secret_key, b.public_key, "t"), agree(b.secret_key, a.public_key, "t"));
  EXPECT_NE(agree(a.secret_key, b.public_key, "t"), agree(a.secret_key, c.public_key, "t"));
  Key32 zero{};  // a low-order point
  EXPECT_THROW(agree(a.secret_key, zero, "t"), Error);
}

TEST(SecAggCrypto, AeadBindsKeyAndAssociatedData) {
  auto key = random_key();
  auto ad = share_associated_data(3, 1, 2);
  auto sealed = aead_encrypt(key, "the shares", ad);
  EXPECT_EQ(sealed.size(), 10 + kAeadOverhead);
  EXPECT_EQ(aead_decrypt(key, sealed, ad, "t"), "the shares");
  EXPECT_THROW(aead_decrypt(key, sealed, share_associated_data(3, 1, 4), "t"), Error);  // another recipient
  EXPECT_THROW(aead_decrypt(key, sealed, share_associated_data(4, 1, 2), "t"), Error);  // another round
  EXPECT_THROW(aead_decrypt(random_key(), sealed, ad, "t"), Error);
  auto tampered = sealed;
  tampered[30] ^= 1;
  EXPECT_THROW(aead_decrypt(key, tampered, ad, "t"), Error);
  EXPECT_THROW(aead_decrypt(key, sealed.substr(0, 20), ad, "t"), Error);
}

TEST(SecAggCrypto, MasksCancelAndCoverTheModulus) {
  auto seed = random_key();
  std::vector<std::uint32_t> v(10000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint32_t>(i % 1000);
  auto original = v;
  apply_mask(seed, 1ULL << 20, +1, v);
  for (auto w : v) EXPECT_LT(w, 1u << 20);
  EXPECT_NE(v, original);
  apply_mask(seed, 1ULL << 20, -1, v);
  EXPECT_EQ(v, original);
  // The keystream continues across chunks: a long vector's prefix is the short one's.
  std::vector<std::uint32_t> a(5000, 0), b(9000, 0);
  apply_mask(seed, 1ULL << 32, +1, a);
  apply_mask(seed, 1ULL << 32, +1, b);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  std::set<std::uint32_t> distinct(b.begin(), b.end());
  EXPECT_GT(distinct.size(), 8990u);
}

TEST(SecAggQuantization, RoundTripWithinOneStep) {
  QuantizationParams q;
  q.clipping_range = 2.0;
  q.quantization_range = 1 << 16;
  std::mt19937_64 rng(4);
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  std::vector<float> x = {-3.0f, -2.0f, -0.5f, 0.0f, 0.123f, 1.999f, 2.0f, 7.0f};
  auto words = quantize(x.data(), x.size(), q.clipping_range, q.quantization_range, uniform);
  const double step = 2 * q.clipping_range / q.quantization_range;
  for (std::size_t i = 0; i < x.size(); ++i) {
    double clipped = std::clamp<double>(x[i], -2.0, 2.0);
    EXPECT_LE(words[i], q.quantization_range);
    EXPECT_NEAR(dequantize(words[i], q.clipping_range, q.quantization_range), clipped, step);
  }
  EXPECT_EQ(quantized_weight(500, q, 10), (1u << 16) / 2);
  EXPECT_EQ(quantized_weight(5000, q, 10), 5u << 16);  // above max_weight: Flower's ratio 5
  // ... but never so large that the clients' weights wrap around the modulus.
  EXPECT_EQ(quantized_weight(1e9, q, 10), ((1ULL << 32) - 1) / 10);
}
