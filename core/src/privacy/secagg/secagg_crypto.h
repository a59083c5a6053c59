// The cryptographic primitives of SecAgg+, all from libsodium:
//   - X25519 key pairs and a symmetric 32-byte agreement key
//     (BLAKE2b of the X25519 point and both public keys, in a fixed order),
//   - XChaCha20-Poly1305 AEAD for the key shares clients relay to each other
//     through the server (random 24-byte nonce in front of the ciphertext;
//     associated data binds round, sender and recipient),
//   - the mask PRG: the ChaCha20 keystream under a 32-byte key, read as
//     little-endian uint32 words reduced mod a power of two.
// Torch-free; every function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fedtrack::secagg {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kAeadOverhead = 24 + 16;  // nonce + tag

using Key32 = std::array<std::uint8_t, kKeyBytes>;

// sodium_init() once; Error(kInternal) if libsodium cannot start.
void ensure_sodium();

struct KeyPair {
  Key32 public_key{};
  Key32 secret_key{};
};

KeyPair generate_key_pair();
// The public key of an X25519 secret key.
Key32 public_key_of(const Key32& secret_key);
// 32 random bytes from libsodium's CSPRNG.
Key32 random_key();

// The key both sides of a pair derive: mine = (sk, pk), theirs = their_pk.
// Error(kCorruption) naming `what` for a low-order (all-zero result) key.
Key32 agree(const Key32& my_secret, const Key32& their_public, const std::string& what);

// Associated data of one relayed share: "FTSA", round, sender, recipient.
std::string share_associated_data(std::uint64_t round, std::uint32_t sender, std::uint32_t recipient);

std::string aead_encrypt(const Key32& key, std::string_view plaintext, std::string_view associated_data);
// Error(kCorruption) naming `what` when the ciphertext or its associated
// data was altered or the key is wrong.
std::string aead_decrypt(const Key32& key, std::string_view ciphertext, std::string_view associated_data,
                         const std::string& what);

// `words` uint32 values of the ChaCha20 keystream under `seed`, each masked
// with modulus - 1 (modulus a power of two <= 2^32), added (sign = +1) or
// subtracted (sign = -1) into `vector` mod modulus.
void apply_mask(const Key32& seed, std::uint64_t modulus, int sign, std::vector<std::uint32_t>& vector);

std::string_view as_view(const Key32& key);
Key32 key_from(std::string_view bytes, const std::string& what);

}  // namespace fedtrack::secagg
