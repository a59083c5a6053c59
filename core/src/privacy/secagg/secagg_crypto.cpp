#include "privacy/secagg/secagg_crypto.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "fedtrack/core/error.h"

namespace fedtrack::secagg {

void ensure_sodium() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = sodium_init() >= 0; });
  if (!ok) throw Error::internal("secure aggregation: libsodium failed to initialise");
}

Key32 random_key() {
  ensure_sodium();
  Key32 key;
  randombytes_buf(key.data(), key.size());
  return key;
}

Key32 public_key_of(const Key32& secret_key) {
  ensure_sodium();
  Key32 pk;
  crypto_scalarmult_base(pk.data(), secret_key.data());
  return pk;
}

KeyPair generate_key_pair() {
  KeyPair pair;
  pair.secret_key = random_key();
  pair.public_key = public_key_of(pair.secret_key);
  return pair;
}

Key32 agree(const Key32& my_secret, const Key32& their_public, const std::string& what) {
  ensure_sodium();
  std::uint8_t point[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(point, my_secret.data(), their_public.data()) != 0) {
    throw Error::corruption(what + ": a public key of low order (no shared secret)");
  }
  Key32 mine = public_key_of(my_secret);
  const Key32& low = std::min(mine, their_public);
  const Key32& high = std::max(mine, their_public);
  static const char kContext[] = "fedtrack secagg+ agreement v1";
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kKeyBytes);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kContext), sizeof kContext - 1);
  crypto_generichash_update(&state, point, sizeof point);
  crypto_generichash_update(&state, low.data(), low.size());
  crypto_generichash_update(&state, high.data(), high.size());
  Key32 key;
  crypto_generichash_final(&state, key.data(), key.size());
  sodium_memzero(point, sizeof point);
  return key;
}

std::string share_associated_data(std::uint64_t round, std::uint32_t sender, std::uint32_t recipient) {
  std::string ad = "FTSA";
  for (int i = 0; i < 8; ++i) ad.push_back(static_cast<char>(round >> (8 * i)));
  for (int i = 0; i < 4; ++i) ad.push_back(static_cast<char>(sender >> (8 * i)));
  for (int i = 0; i < 4; ++i) ad.push_back(static_cast<char>(recipient >> (8 * i)));
  return ad;
}

std::string aead_encrypt(const Key32& key, std::string_view plaintext, std::string_view associated_data) {
  ensure_sodium();
  constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  static_assert(kNonce + crypto_aead_xchacha20poly1305_ietf_ABYTES == kAeadOverhead);
  std::string out(kNonce + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonce);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonce, &written, reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(associated_data.data()), associated_data.size(), nullptr, nonce,
      key.data());
  out.resize(kNonce + written);
  return out;
}

std::string aead_decrypt(const Key32& key, std::string_view ciphertext, std::string_view associated_data,
                         const std::string& what) {
  ensure_sodium();
  constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  if (ciphertext.size() < kAeadOverhead) {
    throw Error::corruption(what + ": a ciphertext of " + std::to_string(ciphertext.size()) + " bytes is too short");
  }
  std::string out(ciphertext.size() - kAeadOverhead, '\0');
  unsigned long long written = 0;
  const auto* nonce = reinterpret_cast<const unsigned char*>(ciphertext.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &written, nullptr, nonce + kNonce,
          ciphertext.size() - kNonce, reinterpret_cast<const unsigned char*>(associated_data.data()),
          associated_data.size(), nonce, key.data()) != 0) {
    throw Error::corruption(what + ": the ciphertext does not authenticate (tampered, misaddressed or wrong key)");
  }
  out.resize(written);
  return out;
}

void apply_mask(const Key32& seed, std::uint64_t modulus, int sign, std::vector<std::uint32_t>& vector) {
  ensure_sodium();
  const std::uint32_t mask = static_cast<std::uint32_t>(modulus - 1);
  static const unsigned char kNonce[crypto_stream_chacha20_NONCEBYTES] = {};
  // The keystream in blocks of 16 KiB, continuing the ChaCha20 block counter.
  constexpr std::size_t kChunkWords = 4096;
  std::uint32_t buffer[kChunkWords];
  for (std::size_t start = 0; start < vector.size(); start += kChunkWords) {
    std::size_t n = std::min(kChunkWords, vector.size() - start);
    // 64-byte blocks: kChunkWords*4 is a multiple of 64, so chunk k starts at block k*256.
    crypto_stream_chacha20_xor_ic(reinterpret_cast<unsigned char*>(buffer),
                                  reinterpret_cast<const unsigned char*>(std::memset(buffer, 0, n * 4)), n * 4,
                                  kNonce, (start * 4) / 64, seed.data());
    if (sign > 0) {
      for (std::size_t i = 0; i < n; ++i) vector[start + i] = (vector[start + i] + (buffer[i] & mask)) & mask;
    } else {
      for (std::size_t i = 0; i < n; ++i) vector[start + i] = (vector[start + i] - (buffer[i] & mask)) & mask;
    }
  }
  sodium_memzero(buffer, sizeof buffer);
}

std::string_view as_view(const Key32& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

Key32 key_from(std::string_view bytes, const std::string& what) {
  if (bytes.size() != kKeyBytes) {
    throw Error::corruption(what + ": a key is " + std::to_string(bytes.size()) + " bytes, not 32");
  }
  Key32 key;
  std::memcpy(key.data(), bytes.data(), kKeyBytes);
  return key;
}

}  // namespace fedtrack::secagg
