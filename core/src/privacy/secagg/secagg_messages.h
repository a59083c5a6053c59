// The SecAgg+ stage messages and their one binary encoding ("FTSG", version,
// stage, body; little-endian; every count bounded by the bytes present).
// The server's requests and the clients' replies of the four stages:
//   1 setup        request: round, your id, threshold, quantization, dimension, neighbours
//                  reply:   your two X25519 public keys (share encryption, masks)
//   2 share keys   request: the public keys of your neighbours that advertised
//                  reply:   one AEAD ciphertext of your key shares per neighbour
//   3 masked input request: the ciphertexts your neighbours addressed to you
//                  reply:   the masked vector (dimension + 1 words < modulus)
//   4 unmask       request: which neighbours survived stage 3, which dropped
//                  reply:   seed shares of the survivors, key shares of the dropped
// A decoder refuses anything malformed with Error(kCorruption) naming `what`;
// the semantic checks (who may send what) live in the client and server.
// Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "privacy/secagg/quantization.h"
#include "privacy/secagg/secagg_crypto.h"

namespace fedtrack::secagg {

enum class Stage : std::uint8_t { kSetup = 1, kShareKeys = 2, kMaskedInput = 3, kUnmask = 4, kDone = 5 };
const char* stage_name(Stage stage);

// The stage a message is for; Error(kCorruption) on a bad envelope.
Stage stage_of(std::string_view message, const std::string& what);

struct SetupRequest {
  std::uint64_t round = 0;
  std::uint32_t id = 0;
  std::uint32_t threshold = 0;
  std::uint32_t clients = 0;  // in the round (bounds the weight word)
  QuantizationParams quantization;
  std::uint64_t dimension = 0;
  std::vector<std::uint32_t> neighbours;  // sorted, includes id
};
struct KeysReply {
  Key32 cipher_public{};  // encrypts the shares relayed to this client
  Key32 mask_public{};    // pairwise masks; its secret key is what is shared
};
struct PublicKeys {
  std::uint32_t id = 0;
  Key32 cipher_public{};
  Key32 mask_public{};
};
struct ShareKeysRequest {
  std::uint64_t round = 0;
  std::vector<PublicKeys> neighbours;  // includes the recipient itself
};
struct Addressed {
  std::uint32_t peer = 0;  // recipient in a reply, sender in a request
  std::string ciphertext;
};
struct ShareKeysReply {
  std::vector<Addressed> shares;
};
struct MaskedInputRequest {
  std::uint64_t round = 0;
  std::vector<Addressed> shares;
};
struct MaskedInputReply {
  std::vector<std::uint32_t> words;
};
struct UnmaskRequest {
  std::uint64_t round = 0;
  std::vector<std::uint32_t> survivors;  // their self-mask seed shares are wanted
  std::vector<std::uint32_t> dropped;    // their mask secret key shares are wanted
};
enum class ShareKind : std::uint8_t { kSeed = 0, kMaskKey = 1 };
struct RevealedShare {
  std::uint32_t owner = 0;
  ShareKind kind = ShareKind::kSeed;
  std::string share;  // encode_share()
};
struct UnmaskReply {
  std::vector<RevealedShare> shares;
};

std::string encode(const SetupRequest& m);
std::string encode(const KeysReply& m);
std::string encode(const ShareKeysRequest& m);
std::string encode(const ShareKeysReply& m);
std::string encode(const MaskedInputRequest& m);
std::string encode(const MaskedInputReply& m);
std::string encode(const UnmaskRequest& m);
std::string encode(const UnmaskReply& m);

SetupRequest decode_setup_request(std::string_view bytes, const std::string& what);
KeysReply decode_keys_reply(std::string_view bytes, const std::string& what);
ShareKeysRequest decode_share_keys_request(std::string_view bytes, const std::string& what);
ShareKeysReply decode_share_keys_reply(std::string_view bytes, const std::string& what);
MaskedInputRequest decode_masked_input_request(std::string_view bytes, const std::string& what);
MaskedInputReply decode_masked_input_reply(std::string_view bytes, const std::string& what);
UnmaskRequest decode_unmask_request(std::string_view bytes, const std::string& what);
UnmaskReply decode_unmask_reply(std::string_view bytes, const std::string& what);

// The plaintext inside one relayed ciphertext.
struct SharePlaintext {
  std::uint64_t round = 0;
  std::uint32_t sender = 0;
  std::uint32_t recipient = 0;
  std::string seed_share;      // encode_share()
  std::string mask_key_share;  // encode_share()
};
std::string encode(const SharePlaintext& m);
SharePlaintext decode_share_plaintext(std::string_view bytes, const std::string& what);
// Its exact encoded size, so a relayed ciphertext's length can be checked.
std::size_t share_plaintext_bytes();

}  // namespace fedtrack::secagg
