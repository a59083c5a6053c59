#include "privacy/secagg/secagg_messages.h"

#include <cstring>

#include "byte_codec.h"
#include "fedtrack/core/error.h"
#include "privacy/secagg/shamir.h"

namespace fedtrack::secagg {
namespace {

constexpr char kMagic[4] = {'F', 'T', 'S', 'G'};
constexpr std::uint8_t kVersion = 1;
constexpr char kPlainMagic[4] = {'F', 'T', 'S', 'S'};

ByteWriter open(Stage stage) {
  ByteWriter w;
  w.append(std::string_view(kMagic, 4));
  w.put(kVersion);
  w.put(static_cast<std::uint8_t>(stage));
  return w;
}

ByteReader open(std::string_view bytes, Stage expected, const std::string& what) {
  Stage got = stage_of(bytes, what);
  if (got != expected) {
    throw Error::corruption(what + ": a " + stage_name(got) + " message where " + stage_name(expected) +
                            " was expected");
  }
  ByteReader r(bytes.substr(6), what);
  return r;
}

// A count of items each at least `min_item_bytes` long must fit in what is left.
std::uint32_t get_count(ByteReader& r, std::size_t min_item_bytes, const char* field) {
  auto n = r.get<std::uint32_t>(field);
  if (static_cast<std::uint64_t>(n) * min_item_bytes > r.remaining()) {
    // Reading the items would fail anyway; say so before allocating.
    r.take(static_cast<std::uint64_t>(n) * min_item_bytes, field);
  }
  return n;
}

void put_key(ByteWriter& w, const Key32& key) { w.append(as_view(key)); }
Key32 get_key(ByteReader& r, const char* field, const std::string& what) { return key_from(r.take(kKeyBytes, field), what); }

void put_ids(ByteWriter& w, const std::vector<std::uint32_t>& ids) {
  w.put(static_cast<std::uint32_t>(ids.size()));
  for (auto id : ids) w.put(id);
}
std::vector<std::uint32_t> get_ids(ByteReader& r, const char* field) {
  auto n = get_count(r, 4, field);
  std::vector<std::uint32_t> ids(n);
  for (auto& id : ids) id = r.get<std::uint32_t>(field);
  return ids;
}

void put_addressed(ByteWriter& w, const std::vector<Addressed>& items) {
  w.put(static_cast<std::uint32_t>(items.size()));
  for (const auto& a : items) {
    w.put(a.peer);
    w.put_bytes(a.ciphertext);
  }
}
std::vector<Addressed> get_addressed(ByteReader& r) {
  auto n = get_count(r, 8, "ciphertexts");
  std::vector<Addressed> items(n);
  for (auto& a : items) {
    a.peer = r.get<std::uint32_t>("peer id");
    a.ciphertext = std::string(r.get_bytes("ciphertext"));
  }
  return items;
}

}  // namespace

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::kSetup: return "setup";
    case Stage::kShareKeys: return "share-keys";
    case Stage::kMaskedInput: return "masked-input";
    case Stage::kUnmask: return "unmask";
    case Stage::kDone: return "done";
  }
  return "unknown";
}

Stage stage_of(std::string_view message, const std::string& what) {
  if (message.size() < 6 || std::memcmp(message.data(), kMagic, 4) != 0) {
    throw Error::corruption(what + ": not a secure-aggregation message");
  }
  if (static_cast<std::uint8_t>(message[4]) != kVersion) {
    throw Error::corruption(what + ": secure-aggregation message version " +
                            std::to_string(static_cast<std::uint8_t>(message[4])) + " is not supported");
  }
  auto stage = static_cast<std::uint8_t>(message[5]);
  if (stage < 1 || stage > 4) throw Error::corruption(what + ": unknown secure-aggregation stage " + std::to_string(stage));
  return static_cast<Stage>(stage);
}

std::string encode(const SetupRequest& m) {
  auto w = open(Stage::kSetup);
  w.put(m.round);
  w.put(m.id);
  w.put(m.threshold);
  w.put(m.clients);
  w.put(m.quantization.clipping_range);
  w.put(m.quantization.quantization_range);
  w.put(m.quantization.modulus_range);
  w.put(m.quantization.max_weight);
  w.put(m.dimension);
  put_ids(w, m.neighbours);
  return w.take();
}

SetupRequest decode_setup_request(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kSetup, what);
  SetupRequest m;
  m.round = r.get<std::uint64_t>("round");
  m.id = r.get<std::uint32_t>("id");
  m.threshold = r.get<std::uint32_t>("threshold");
  m.clients = r.get<std::uint32_t>("clients");
  m.quantization.clipping_range = r.get<double>("clipping_range");
  m.quantization.quantization_range = r.get<std::uint64_t>("quantization_range");
  m.quantization.modulus_range = r.get<std::uint64_t>("modulus_range");
  m.quantization.max_weight = r.get<double>("max_weight");
  m.dimension = r.get<std::uint64_t>("dimension");
  m.neighbours = get_ids(r, "neighbours");
  r.expect_end();
  return m;
}

std::string encode(const KeysReply& m) {
  auto w = open(Stage::kSetup);
  put_key(w, m.cipher_public);
  put_key(w, m.mask_public);
  return w.take();
}

KeysReply decode_keys_reply(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kSetup, what);
  KeysReply m;
  m.cipher_public = get_key(r, "cipher public key", what);
  m.mask_public = get_key(r, "mask public key", what);
  r.expect_end();
  return m;
}

std::string encode(const ShareKeysRequest& m) {
  auto w = open(Stage::kShareKeys);
  w.put(m.round);
  w.put(static_cast<std::uint32_t>(m.neighbours.size()));
  for (const auto& k : m.neighbours) {
    w.put(k.id);
    put_key(w, k.cipher_public);
    put_key(w, k.mask_public);
  }
  return w.take();
}

ShareKeysRequest decode_share_keys_request(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kShareKeys, what);
  ShareKeysRequest m;
  m.round = r.get<std::uint64_t>("round");
  auto n = get_count(r, 4 + 2 * kKeyBytes, "neighbour keys");
  m.neighbours.resize(n);
  for (auto& k : m.neighbours) {
    k.id = r.get<std::uint32_t>("neighbour id");
    k.cipher_public = get_key(r, "cipher public key", what);
    k.mask_public = get_key(r, "mask public key", what);
  }
  r.expect_end();
  return m;
}

std::string encode(const ShareKeysReply& m) {
  auto w = open(Stage::kShareKeys);
  put_addressed(w, m.shares);
  return w.take();
}

ShareKeysReply decode_share_keys_reply(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kShareKeys, what);
  ShareKeysReply m;
  m.shares = get_addressed(r);
  r.expect_end();
  return m;
}

std::string encode(const MaskedInputRequest& m) {
  auto w = open(Stage::kMaskedInput);
  w.put(m.round);
  put_addressed(w, m.shares);
  return w.take();
}

MaskedInputRequest decode_masked_input_request(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kMaskedInput, what);
  MaskedInputRequest m;
  m.round = r.get<std::uint64_t>("round");
  m.shares = get_addressed(r);
  r.expect_end();
  return m;
}

std::string encode(const MaskedInputReply& m) {
  auto w = open(Stage::kMaskedInput);
  w.put(static_cast<std::uint64_t>(m.words.size()));
  w.append(std::string_view(reinterpret_cast<const char*>(m.words.data()), m.words.size() * 4));
  return w.take();
}

MaskedInputReply decode_masked_input_reply(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kMaskedInput, what);
  auto n = r.get<std::uint64_t>("word count");
  if (n > r.remaining() / 4) {
    throw Error::corruption(what + ": the masked vector claims " + std::to_string(n) + " words in " +
                            std::to_string(r.remaining()) + " bytes");
  }
  auto raw = r.take(n * 4, "masked vector");
  r.expect_end();
  MaskedInputReply m;
  m.words.resize(n);
  std::memcpy(m.words.data(), raw.data(), raw.size());
  return m;
}

std::string encode(const UnmaskRequest& m) {
  auto w = open(Stage::kUnmask);
  w.put(m.round);
  put_ids(w, m.survivors);
  put_ids(w, m.dropped);
  return w.take();
}

UnmaskRequest decode_unmask_request(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kUnmask, what);
  UnmaskRequest m;
  m.round = r.get<std::uint64_t>("round");
  m.survivors = get_ids(r, "survivors");
  m.dropped = get_ids(r, "dropped");
  r.expect_end();
  return m;
}

std::string encode(const UnmaskReply& m) {
  auto w = open(Stage::kUnmask);
  w.put(static_cast<std::uint32_t>(m.shares.size()));
  for (const auto& s : m.shares) {
    w.put(s.owner);
    w.put(static_cast<std::uint8_t>(s.kind));
    w.put_bytes(s.share);
  }
  return w.take();
}

UnmaskReply decode_unmask_reply(std::string_view bytes, const std::string& what) {
  auto r = open(bytes, Stage::kUnmask, what);
  UnmaskReply m;
  auto n = get_count(r, 9, "shares");
  m.shares.resize(n);
  for (auto& s : m.shares) {
    s.owner = r.get<std::uint32_t>("share owner");
    auto kind = r.get<std::uint8_t>("share kind");
    if (kind > 1) throw Error::corruption(what + ": unknown share kind " + std::to_string(kind));
    s.kind = static_cast<ShareKind>(kind);
    s.share = std::string(r.get_bytes("share"));
  }
  r.expect_end();
  return m;
}

std::size_t share_plaintext_bytes() { return 4 + 8 + 4 + 4 + 2 * kEncodedShareBytes; }

std::string encode(const SharePlaintext& m) {
  ByteWriter w;
  w.append(std::string_view(kPlainMagic, 4));
  w.put(m.round);
  w.put(m.sender);
  w.put(m.recipient);
  w.append(m.seed_share);
  w.append(m.mask_key_share);
  return w.take();
}

SharePlaintext decode_share_plaintext(std::string_view bytes, const std::string& what) {
  if (bytes.size() != share_plaintext_bytes() || std::memcmp(bytes.data(), kPlainMagic, 4) != 0) {
    throw Error::corruption(what + ": not a key-share plaintext");
  }
  ByteReader r(bytes.substr(4), what);
  SharePlaintext m;
  m.round = r.get<std::uint64_t>("round");
  m.sender = r.get<std::uint32_t>("sender");
  m.recipient = r.get<std::uint32_t>("recipient");
  m.seed_share = std::string(r.take(kEncodedShareBytes, "seed share"));
  m.mask_key_share = std::string(r.take(kEncodedShareBytes, "mask key share"));
  r.expect_end();
  return m;
}

}  // namespace fedtrack::secagg
