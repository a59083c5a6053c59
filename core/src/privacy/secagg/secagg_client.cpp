#include "privacy/secagg/secagg_client.h"

#include <sodium.h>

#include <algorithm>
#include <set>

#include "fedtrack/core/error.h"

namespace fedtrack::secagg {

SecAggClient::~SecAggClient() {
  sodium_memzero(cipher_.secret_key.data(), kKeyBytes);
  sodium_memzero(mask_.secret_key.data(), kKeyBytes);
  sodium_memzero(seed_.data(), kKeyBytes);
  for (auto& [owner, held] : held_) {
    sodium_memzero(held.seed.y.data(), held.seed.y.size());
    sodium_memzero(held.mask_key.y.data(), held.mask_key.y.size());
  }
}

std::vector<std::string> SecAggClient::secrets_for_testing() const {
  return {std::string(as_view(cipher_.secret_key)), std::string(as_view(mask_.secret_key)),
          std::string(as_view(seed_))};
}

void SecAggClient::expect(Stage stage) const {
  if (next_ != stage) {
    throw Error::failed_precondition(what() + ": a " + stage_name(stage) + " request while expecting " +
                                     stage_name(next_));
  }
}

std::string SecAggClient::what() const {
  return "secure aggregation round " + std::to_string(setup_.round) + " client " + std::to_string(setup_.id);
}

std::string SecAggClient::on_setup(std::string_view request) {
  expect(Stage::kSetup);
  auto m = decode_setup_request(request, "secure aggregation setup request");
  const auto& q = m.quantization;
  bool power_of_two = q.modulus_range >= 2 && (q.modulus_range & (q.modulus_range - 1)) == 0;
  if (!power_of_two || q.modulus_range > (1ULL << 32) || q.quantization_range == 0 ||
      q.quantization_range >= q.modulus_range || !(q.clipping_range > 0) || !(q.max_weight > 0)) {
    throw Error::corruption("secure aggregation setup request: bad quantization parameters");
  }
  std::set<std::uint32_t> ids(m.neighbours.begin(), m.neighbours.end());
  if (ids.size() != m.neighbours.size() || ids.count(m.id) == 0 || ids.count(0) != 0) {
    throw Error::corruption("secure aggregation setup request: the neighbour list must hold distinct non-zero ids "
                            "including the client's own");
  }
  if (m.clients < ids.size() || static_cast<long double>(m.clients) * q.quantization_range >= q.modulus_range) {
    throw Error::corruption("secure aggregation setup request: " + std::to_string(m.clients) +
                            " clients do not fit the neighbour list or the modulus");
  }
  if (m.threshold < 2 || m.threshold > ids.size()) {
    throw Error::corruption("secure aggregation setup request: threshold " + std::to_string(m.threshold) + " with " +
                            std::to_string(ids.size()) + " neighbours");
  }
  setup_ = std::move(m);
  cipher_ = generate_key_pair();
  mask_ = generate_key_pair();
  seed_ = random_key();
  next_ = Stage::kShareKeys;
  return encode(KeysReply{cipher_.public_key, mask_.public_key});
}

std::string SecAggClient::on_share_keys(std::string_view request) {
  expect(Stage::kShareKeys);
  auto m = decode_share_keys_request(request, what() + " share-keys request");
  if (m.round != setup_.round) throw Error::corruption(what() + ": share-keys request for another round");
  std::set<std::uint32_t> allowed(setup_.neighbours.begin(), setup_.neighbours.end());
  std::set<Key32> keys;
  for (const auto& k : m.neighbours) {
    if (allowed.count(k.id) == 0 || neighbour_keys_.count(k.id) != 0) {
      throw Error::corruption(what() + ": share-keys request names " + std::to_string(k.id) +
                              ", not a neighbour or repeated");
    }
    if (!keys.insert(k.cipher_public).second || !keys.insert(k.mask_public).second) {
      throw Error::corruption(what() + ": share-keys request repeats a public key (client " + std::to_string(k.id) +
                              ")");
    }
    neighbour_keys_[k.id] = k;
  }
  auto self = neighbour_keys_.find(setup_.id);
  if (self == neighbour_keys_.end() || self->second.cipher_public != cipher_.public_key ||
      self->second.mask_public != mask_.public_key) {
    throw Error::corruption(what() + ": share-keys request does not carry this client's own public keys");
  }
  if (neighbour_keys_.size() < setup_.threshold) {
    throw Error::corruption(what() + ": " + std::to_string(neighbour_keys_.size()) +
                            " neighbours advertised keys, fewer than the threshold " +
                            std::to_string(setup_.threshold));
  }
  std::vector<std::uint32_t> xs;
  for (const auto& [id, k] : neighbour_keys_) xs.push_back(id);
  auto seed_shares = shamir_split(as_view(seed_), setup_.threshold, xs);
  auto key_shares = shamir_split(as_view(mask_.secret_key), setup_.threshold, xs);
  ShareKeysReply reply;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i] == setup_.id) {
      held_[setup_.id] = {seed_shares[i], key_shares[i]};
      continue;
    }
    SharePlaintext plain{setup_.round, setup_.id, xs[i], encode_share(seed_shares[i]), encode_share(key_shares[i])};
    auto key = agree(cipher_.secret_key, neighbour_keys_[xs[i]].cipher_public,
                     what() + ": cipher key of client " + std::to_string(xs[i]));
    auto text = encode(plain);
    reply.shares.push_back(
        {xs[i], aead_encrypt(key, text, share_associated_data(setup_.round, setup_.id, xs[i]))});
    sodium_memzero(text.data(), text.size());
    sodium_memzero(key.data(), key.size());
  }
  next_ = Stage::kMaskedInput;
  return encode(reply);
}

std::string SecAggClient::on_masked_input(std::string_view request, const float* update, std::size_t n,
                                          double num_examples, const std::function<double()>& uniform) {
  expect(Stage::kMaskedInput);
  if (n != setup_.dimension) {
    throw Error::invalid_argument(what() + ": an update of " + std::to_string(n) + " values, the round has " +
                                  std::to_string(setup_.dimension));
  }
  auto m = decode_masked_input_request(request, what() + " masked-input request");
  if (m.round != setup_.round) throw Error::corruption(what() + ": masked-input request for another round");
  for (const auto& a : m.shares) {
    std::string from = what() + ": the key shares from client " + std::to_string(a.peer);
    auto sender = neighbour_keys_.find(a.peer);
    if (a.peer == setup_.id || sender == neighbour_keys_.end() || held_.count(a.peer) != 0) {
      throw Error::corruption(from + " (not a neighbour, or repeated)");
    }
    auto key = agree(cipher_.secret_key, sender->second.cipher_public, from);
    auto text = aead_decrypt(key, a.ciphertext, share_associated_data(setup_.round, a.peer, setup_.id), from);
    auto plain = decode_share_plaintext(text, from);
    sodium_memzero(text.data(), text.size());
    if (plain.round != setup_.round || plain.sender != a.peer || plain.recipient != setup_.id) {
      throw Error::corruption(from + " are sealed for another round, sender or recipient");
    }
    Held held{decode_share(plain.seed_share, from), decode_share(plain.mask_key_share, from)};
    if (held.seed.x != setup_.id || held.mask_key.x != setup_.id) {
      throw Error::corruption(from + " are not evaluated at this client's id");
    }
    held_[a.peer] = held;
  }
  if (held_.size() < setup_.threshold) {
    throw Error::corruption(what() + ": key shares from " + std::to_string(held_.size()) +
                            " clients (itself included), fewer than the threshold " +
                            std::to_string(setup_.threshold));
  }
  const auto& q = setup_.quantization;
  auto words = quantize_weighted(update, n, quantized_weight(num_examples, q, setup_.clients), q, uniform);
  apply_mask(seed_, q.modulus_range, +1, words);
  for (const auto& [peer, held] : held_) {
    if (peer == setup_.id) continue;
    auto pair_key = agree(mask_.secret_key, neighbour_keys_[peer].mask_public,
                          what() + ": mask key of client " + std::to_string(peer));
    apply_mask(pair_key, q.modulus_range, setup_.id > peer ? +1 : -1, words);
    sodium_memzero(pair_key.data(), pair_key.size());
  }
  next_ = Stage::kUnmask;
  return encode(MaskedInputReply{std::move(words)});
}

std::string SecAggClient::on_unmask(std::string_view request) {
  expect(Stage::kUnmask);
  next_ = Stage::kDone;  // answered at most once, whatever happens below
  auto m = decode_unmask_request(request, what() + " unmask request");
  if (m.round != setup_.round) throw Error::corruption(what() + ": unmask request for another round");
  std::set<std::uint32_t> survivors(m.survivors.begin(), m.survivors.end());
  std::set<std::uint32_t> dropped(m.dropped.begin(), m.dropped.end());
  if (survivors.size() != m.survivors.size() || dropped.size() != m.dropped.size()) {
    throw Error::corruption(what() + ": unmask request repeats a client");
  }
  for (auto id : dropped) {
    if (survivors.count(id) != 0) {
      throw Error::corruption(what() + ": unmask request asks for both secrets of client " + std::to_string(id));
    }
    if (id == setup_.id || held_.count(id) == 0) {
      throw Error::corruption(what() + ": unmask request names client " + std::to_string(id) +
                              " as dropped, but it is this client or sent no shares");
    }
  }
  if (survivors.count(setup_.id) == 0 || survivors.size() < setup_.threshold) {
    throw Error::corruption(what() + ": unmask request with " + std::to_string(survivors.size()) +
                            " survivors (this client must be one; at least the threshold " +
                            std::to_string(setup_.threshold) + ")");
  }
  UnmaskReply reply;
  for (auto id : survivors) {
    auto held = held_.find(id);
    if (held == held_.end()) {
      throw Error::corruption(what() + ": unmask request names client " + std::to_string(id) +
                              " as a survivor, but it sent no shares");
    }
    reply.shares.push_back({id, ShareKind::kSeed, encode_share(held->second.seed)});
  }
  for (auto id : dropped) reply.shares.push_back({id, ShareKind::kMaskKey, encode_share(held_[id].mask_key)});
  return encode(reply);
}

}  // namespace fedtrack::secagg
