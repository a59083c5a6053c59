#include "privacy/secagg/secagg_server.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "fedtrack/core/error.h"

namespace fedtrack::secagg {
namespace {

std::uint32_t resolve(ShareCount count, double of) {
  if (count.fraction) return static_cast<std::uint32_t>(std::nearbyint(count.value * of));  // half to even
  return static_cast<std::uint32_t>(count.value);
}

bool contains(const std::set<std::uint32_t>& set, std::uint32_t id) { return set.count(id) != 0; }

}  // namespace

RoundPlan plan_round(ShareCount num_shares, ShareCount threshold, std::size_t clients) {
  if (clients < 2) {
    throw Error::invalid_argument("secure aggregation needs at least 2 clients in a round, not " +
                                  std::to_string(clients));
  }
  const auto n = static_cast<std::uint32_t>(clients);
  if (!num_shares.fraction && num_shares.value == 1) num_shares = {1.0, true};
  if (!threshold.fraction && threshold.value == 1) threshold = {1.0, true};
  RoundPlan plan;
  plan.num_shares = resolve(num_shares, n);
  if (num_shares.fraction) {
    if (plan.num_shares < n && plan.num_shares % 2 == 0) ++plan.num_shares;
    if (plan.num_shares <= 2) plan.num_shares = n;
  } else if (plan.num_shares < n && plan.num_shares % 2 == 0) {
    ++plan.num_shares;  // a ring neighbourhood is odd: the client and k/2 on each side
  }
  plan.num_shares = std::min(plan.num_shares, n);
  plan.threshold = resolve(threshold, plan.num_shares);
  if (threshold.fraction) plan.threshold = std::max<std::uint32_t>(plan.threshold, 2);
  if (plan.threshold < 2 || plan.threshold > plan.num_shares) {
    throw Error::invalid_argument("secure_aggregation.reconstruction_threshold resolves to " +
                                  std::to_string(plan.threshold) + " with secure_aggregation.num_shares " +
                                  std::to_string(plan.num_shares) + " for " + std::to_string(n) +
                                  " clients; it must be in 2..num_shares");
  }
  return plan;
}

SecAggServer::SecAggServer(std::uint64_t round, std::size_t clients, RoundPlan plan, QuantizationParams quantization,
                           std::size_t dimension, std::uint64_t graph_seed)
    : round_(round), plan_(plan), quantization_(quantization), dimension_(dimension) {
  const auto& q = quantization_;
  bool power_of_two = q.modulus_range >= 2 && (q.modulus_range & (q.modulus_range - 1)) == 0;
  if (!power_of_two || q.modulus_range > (1ULL << 32) || q.quantization_range == 0 ||
      q.quantization_range >= q.modulus_range) {
    throw Error::invalid_argument(
        "secure_aggregation.modulus_range must be a power of two <= 2^32 above quantization_range");
  }
  if (static_cast<long double>(clients) * q.quantization_range > static_cast<long double>(q.modulus_range - 1)) {
    throw Error::invalid_argument("secure aggregation: " + std::to_string(clients) +
                                  " clients x secure_aggregation.quantization_range " +
                                  std::to_string(q.quantization_range) +
                                  " would overflow secure_aggregation.modulus_range " +
                                  std::to_string(q.modulus_range));
  }
  if (clients < 2 || plan.threshold < 2 || plan.threshold > plan.num_shares || plan.num_shares > clients) {
    throw Error::invalid_argument("secure aggregation: a bad round plan (" + std::to_string(plan.num_shares) +
                                  " shares, threshold " + std::to_string(plan.threshold) + ", " +
                                  std::to_string(clients) + " clients)");
  }
  if (dimension == 0) throw Error::invalid_argument("secure aggregation: a model without parameters");
  // Stage 0: a shuffled ring; each client's neighbourhood is the num_shares ids around it.
  std::vector<std::uint32_t> ring(clients);
  for (std::size_t i = 0; i < clients; ++i) ring[i] = static_cast<std::uint32_t>(i + 1);
  std::mt19937_64 rng(graph_seed);
  for (std::size_t i = clients - 1; i > 0; --i) std::swap(ring[i], ring[rng() % (i + 1)]);
  const auto n = static_cast<std::int64_t>(clients);
  const std::int64_t half = plan.num_shares / 2;
  for (std::int64_t i = 0; i < n; ++i) {
    auto& client = clients_[ring[i]];
    client.keys.id = ring[i];
    if (plan.num_shares >= clients) {
      for (auto id : ring) client.neighbours.insert(id);
    } else {
      for (std::int64_t off = -half; off <= half; ++off) client.neighbours.insert(ring[((i + off) % n + n) % n]);
    }
  }
}

std::string SecAggServer::what(std::uint32_t id) const {
  return "secure aggregation round " + std::to_string(round_) + ", " + stage_name(stage_) + " reply of client " +
         std::to_string(id);
}

std::vector<std::uint32_t> SecAggServer::participants() const {
  const std::set<std::uint32_t>* previous = nullptr;
  switch (stage_) {
    case Stage::kSetup: break;
    case Stage::kShareKeys: previous = &advertised_; break;
    case Stage::kMaskedInput: previous = &shared_; break;
    case Stage::kUnmask: previous = &masked_; break;
    case Stage::kDone: return {};
  }
  std::vector<std::uint32_t> out;
  for (const auto& [id, client] : clients_) {
    if (alive(id) && (previous == nullptr || contains(*previous, id))) out.push_back(id);
  }
  return out;
}

std::string SecAggServer::request(std::uint32_t id) {
  auto ids = participants();
  if (!std::binary_search(ids.begin(), ids.end(), id)) {
    throw Error::failed_precondition("secure aggregation: client " + std::to_string(id) +
                                     " takes no part in the " + stage_name(stage_) + " stage");
  }
  const auto& me = clients_.at(id);
  std::string bytes;
  switch (stage_) {
    case Stage::kSetup:
      bytes = encode(SetupRequest{round_, id, plan_.threshold, static_cast<std::uint32_t>(clients_.size()),
                                  quantization_, dimension_,
                                  std::vector<std::uint32_t>(me.neighbours.begin(), me.neighbours.end())});
      break;
    case Stage::kShareKeys: {
      ShareKeysRequest m{round_, {}};
      for (auto v : me.neighbours) {
        if (contains(advertised_, v)) m.neighbours.push_back(clients_.at(v).keys);
      }
      bytes = encode(m);
      break;
    }
    case Stage::kMaskedInput: {
      MaskedInputRequest m{round_, {}};
      for (auto v : me.neighbours) {
        if (v != id && contains(shared_, v)) m.shares.push_back({v, clients_.at(v).outgoing.at(id)});
      }
      bytes = encode(m);
      break;
    }
    case Stage::kUnmask: {
      UnmaskRequest m{round_, {}, {}};
      for (auto v : me.neighbours) {
        if (contains(masked_, v)) {
          m.survivors.push_back(v);
        } else if (contains(shared_, v)) {
          m.dropped.push_back(v);
        }
      }
      bytes = encode(m);
      break;
    }
    case Stage::kDone: break;
  }
  bytes_sent_ += bytes.size();
  return bytes;
}

void SecAggServer::drop(std::uint32_t id, const std::string& reason) {
  if (clients_.count(id) != 0 && alive(id)) dropped_[id] = reason;
}

void SecAggServer::accept(std::uint32_t id, std::string_view reply) {
  if (hook_) hook_(id, reply);
  bytes_received_ += reply.size();
  auto ids = participants();
  if (!std::binary_search(ids.begin(), ids.end(), id)) {
    throw Error::invalid_argument(what(id) + ": this client takes no part in this stage");
  }
  try {
    if (clients_.at(id).replied) throw Error::invalid_argument(what(id) + ": a second reply");
    switch (stage_) {
      case Stage::kSetup: accept_keys(id, reply); break;
      case Stage::kShareKeys: accept_shares(id, reply); break;
      case Stage::kMaskedInput: accept_masked(id, reply); break;
      case Stage::kUnmask: accept_unmask(id, reply); break;
      case Stage::kDone: break;
    }
    clients_.at(id).replied = true;
  } catch (const Error& e) {
    drop(id, e.what());
    throw;
  }
}

void SecAggServer::accept_keys(std::uint32_t id, std::string_view reply) {
  auto m = decode_keys_reply(reply, what(id));
  if (m.cipher_public == m.mask_public) throw Error::corruption(what(id) + ": the two public keys are the same");
  for (auto v : advertised_) {
    const auto& k = clients_.at(v).keys;
    for (const auto& mine : {m.cipher_public, m.mask_public}) {
      if (mine == k.cipher_public || mine == k.mask_public) {
        throw Error::corruption(what(id) + ": a public key client " + std::to_string(v) + " already advertised");
      }
    }
  }
  auto probe = random_key();  // a low-order key gives no shared secret: refuse it now
  agree(probe, m.cipher_public, what(id) + " (cipher key)");
  agree(probe, m.mask_public, what(id) + " (mask key)");
  auto& keys = clients_.at(id).keys;
  keys.cipher_public = m.cipher_public;
  keys.mask_public = m.mask_public;
}

void SecAggServer::accept_shares(std::uint32_t id, std::string_view reply) {
  auto m = decode_share_keys_reply(reply, what(id));
  std::set<std::uint32_t> expected;
  for (auto v : clients_.at(id).neighbours) {
    if (v != id && contains(advertised_, v)) expected.insert(v);
  }
  std::map<std::uint32_t, std::string> outgoing;
  const std::size_t size = share_plaintext_bytes() + kAeadOverhead;
  for (auto& a : m.shares) {
    if (!contains(expected, a.peer) || outgoing.count(a.peer) != 0) {
      throw Error::corruption(what(id) + ": a ciphertext for client " + std::to_string(a.peer) +
                              ", not a neighbour with keys, or repeated");
    }
    if (a.ciphertext.size() != size) {
      throw Error::corruption(what(id) + ": the ciphertext for client " + std::to_string(a.peer) + " is " +
                              std::to_string(a.ciphertext.size()) + " bytes, not " + std::to_string(size));
    }
    outgoing[a.peer] = std::move(a.ciphertext);
  }
  if (outgoing.size() != expected.size()) {
    throw Error::corruption(what(id) + ": ciphertexts for " + std::to_string(outgoing.size()) + " of " +
                            std::to_string(expected.size()) + " neighbours");
  }
  clients_.at(id).outgoing = std::move(outgoing);
}

void SecAggServer::accept_masked(std::uint32_t id, std::string_view reply) {
  auto m = decode_masked_input_reply(reply, what(id));
  if (m.words.size() != dimension_ + 1) {
    throw Error::invalid_argument(what(id) + ": a masked vector of " + std::to_string(m.words.size()) +
                                  " words, expected " + std::to_string(dimension_ + 1));
  }
  for (std::size_t i = 0; i < m.words.size(); ++i) {
    if (m.words[i] >= quantization_.modulus_range) {
      throw Error::invalid_argument(what(id) + ": word " + std::to_string(i) + " is " + std::to_string(m.words[i]) +
                                    ", not below the modulus " + std::to_string(quantization_.modulus_range));
    }
  }
  clients_.at(id).masked = std::move(m.words);
}

void SecAggServer::accept_unmask(std::uint32_t id, std::string_view reply) {
  auto m = decode_unmask_reply(reply, what(id));
  std::map<std::uint32_t, ShareKind> expected;
  for (auto v : clients_.at(id).neighbours) {
    if (contains(masked_, v)) {
      expected[v] = ShareKind::kSeed;
    } else if (contains(shared_, v)) {
      expected[v] = ShareKind::kMaskKey;
    }
  }
  std::map<std::uint32_t, std::pair<ShareKind, Share>> got;
  for (const auto& s : m.shares) {
    auto want = expected.find(s.owner);
    if (want == expected.end() || want->second != s.kind) {
      throw Error::corruption(what(id) + ": a " + (s.kind == ShareKind::kSeed ? "seed" : "mask-key") +
                              " share of client " + std::to_string(s.owner) + " that was not requested");
    }
    if (got.count(s.owner) != 0) {
      throw Error::corruption(what(id) + ": two shares of client " + std::to_string(s.owner));
    }
    auto share = decode_share(s.share, what(id));
    if (share.x != id) {
      throw Error::corruption(what(id) + ": a share evaluated at " + std::to_string(share.x) +
                              ", not at this client's id");
    }
    got[s.owner] = {s.kind, share};
  }
  if (got.size() != expected.size()) {
    throw Error::corruption(what(id) + ": " + std::to_string(got.size()) + " of the " +
                            std::to_string(expected.size()) + " requested shares");
  }
  for (auto& [owner, entry] : got) {
    (entry.first == ShareKind::kSeed ? seed_shares_ : mask_key_shares_)[owner].push_back(entry.second);
  }
}

void SecAggServer::check_recoverable() const {
  // Which secrets stage 4 will need, and who can still hold their shares.
  const std::set<std::uint32_t>& holders =
      stage_ == Stage::kShareKeys ? shared_ : masked_;  // closed stage 2 -> U2; later -> U3 (minus dropped)
  auto living = [&](std::uint32_t owner) {
    std::size_t n = 0;
    for (auto v : clients_.at(owner).neighbours) n += (contains(holders, v) && alive(v)) ? 1 : 0;
    return n;
  };
  const std::set<std::uint32_t>& owners = stage_ == Stage::kShareKeys ? shared_ : masked_;
  for (auto owner : owners) {
    if (alive(owner) && living(owner) < plan_.threshold) {
      throw Error::unavailable("secure aggregation round " + std::to_string(round_) + ": only " +
                               std::to_string(living(owner)) + " neighbours of client " + std::to_string(owner) +
                               " remain, fewer than the reconstruction threshold " +
                               std::to_string(plan_.threshold));
    }
  }
  if (stage_ != Stage::kShareKeys) {
    for (auto owner : shared_) {
      if (contains(masked_, owner)) continue;
      bool needed = false;
      for (auto v : clients_.at(owner).neighbours) needed = needed || (v != owner && contains(masked_, v));
      if (needed && living(owner) < plan_.threshold) {
        throw Error::unavailable("secure aggregation round " + std::to_string(round_) + ": client " +
                                 std::to_string(owner) + " dropped and only " + std::to_string(living(owner)) +
                                 " of its neighbours remain to remove its masks, fewer than the reconstruction "
                                 "threshold " + std::to_string(plan_.threshold));
      }
    }
  }
}

void SecAggServer::close_stage() {
  for (auto id : participants()) {
    if (!clients_.at(id).replied) drop(id, std::string("no reply in the ") + stage_name(stage_) + " stage");
  }
  std::set<std::uint32_t> replied;
  for (auto& [id, client] : clients_) {
    if (client.replied && alive(id)) replied.insert(id);
    client.replied = false;
  }
  const std::string round = "secure aggregation round " + std::to_string(round_);
  switch (stage_) {
    case Stage::kSetup: {
      advertised_ = replied;
      // A client with fewer than `threshold` advertised neighbours cannot share: it drops, which may cascade.
      for (bool changed = true; changed;) {
        changed = false;
        for (auto id : std::set<std::uint32_t>(advertised_)) {
          std::size_t n = 0;
          for (auto v : clients_.at(id).neighbours) n += contains(advertised_, v) ? 1 : 0;
          if (n < plan_.threshold) {
            drop(id, "fewer neighbours with keys than the reconstruction threshold");
            advertised_.erase(id);
            changed = true;
          }
        }
      }
      if (advertised_.size() < 2) throw Error::unavailable(round + ": fewer than 2 clients advertised keys");
      stage_ = Stage::kShareKeys;
      return;
    }
    case Stage::kShareKeys:
      shared_ = replied;
      if (shared_.size() < plan_.threshold) {
        throw Error::unavailable(round + ": " + std::to_string(shared_.size()) +
                                 " clients shared keys, fewer than the reconstruction threshold");
      }
      check_recoverable();
      stage_ = Stage::kMaskedInput;
      return;
    case Stage::kMaskedInput:
      masked_ = replied;
      if (masked_.size() < plan_.threshold || masked_.size() < 2) {
        throw Error::unavailable(round + ": " + std::to_string(masked_.size()) +
                                 " masked vectors, fewer than the reconstruction threshold " +
                                 std::to_string(plan_.threshold));
      }
      stage_ = Stage::kUnmask;  // holders are now U3
      check_recoverable();
      return;
    case Stage::kUnmask:
      stage_ = Stage::kDone;
      return;
    case Stage::kDone:
      throw Error::failed_precondition(round + ": already complete");
  }
}

SecAggResult SecAggServer::result() {
  const std::string round = "secure aggregation round " + std::to_string(round_);
  if (stage_ != Stage::kDone) throw Error::failed_precondition(round + ": unmask has not completed");
  const auto& q = quantization_;
  const auto mask = static_cast<std::uint32_t>(q.modulus_range - 1);
  std::vector<std::uint32_t> sum(dimension_ + 1, 0);
  for (auto u : masked_) {
    const auto& words = clients_.at(u).masked;
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = (sum[i] + words[i]) & mask;
  }
  auto enough = [&](const std::vector<Share>& shares, const std::string& what) {
    if (shares.size() < plan_.threshold) {
      throw Error::unavailable(what + ": " + std::to_string(shares.size()) + " shares arrived, the reconstruction "
                               "threshold is " + std::to_string(plan_.threshold));
    }
  };
  for (auto u : masked_) {
    enough(seed_shares_[u], round + ": the self-mask seed of client " + std::to_string(u));
    auto secret = shamir_combine(seed_shares_[u], plan_.threshold, kKeyBytes,
                                 round + ": the self-mask seed of client " + std::to_string(u));
    apply_mask(key_from(secret, round), q.modulus_range, -1, sum);
  }
  for (auto v : shared_) {
    if (contains(masked_, v)) continue;
    std::vector<std::uint32_t> partners;
    for (auto w : clients_.at(v).neighbours) {
      if (w != v && contains(masked_, w)) partners.push_back(w);
    }
    if (partners.empty()) continue;
    std::string what = round + ": the mask key of dropped client " + std::to_string(v);
    enough(mask_key_shares_[v], what);
    auto secret = key_from(shamir_combine(mask_key_shares_[v], plan_.threshold, kKeyBytes, what), what);
    if (public_key_of(secret) != clients_.at(v).keys.mask_public) {
      throw Error::corruption(what + " does not match its advertised public key");
    }
    for (auto w : partners) {
      auto pair_key = agree(secret, clients_.at(w).keys.mask_public, what);
      apply_mask(pair_key, q.modulus_range, w > v ? -1 : +1, sum);
    }
  }
  SecAggResult out;
  out.mean = dequantize_mean(sum, masked_.size(), q);
  out.summed.assign(masked_.begin(), masked_.end());
  out.total_weight = static_cast<double>(sum[0]) / static_cast<double>(q.quantization_range);
  return out;
}

}  // namespace fedtrack::secagg
