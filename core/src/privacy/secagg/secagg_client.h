// SecAggClient — one client's side of one SecAgg+ round, transport-free:
// each on_*() takes the server's request bytes and returns the reply bytes.
//
// The stages must come in order (setup, share keys, masked input, unmask),
// each once; anything else, and any request that fails its checks, throws
// Error (kCorruption / kFailedPrecondition) naming the offending thing, and
// the runtime reports the client as failed for the round: the server then
// counts it as dropped. In particular the client
//   - refuses a neighbour list without itself or with fewer than `threshold`
//     members, and a share-keys request that replaces its own public keys;
//   - refuses a relayed ciphertext that does not authenticate, is not from a
//     neighbour, or whose sealed sender / recipient / round differ;
//   - answers unmask once, and never for a client that is both a survivor
//     and dropped, so it never reveals both secrets of one neighbour.
// Secret material lives only in this object and is wiped on destruction.
// Not thread-safe (one round is driven by one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "privacy/secagg/secagg_messages.h"
#include "privacy/secagg/shamir.h"

namespace fedtrack::secagg {

class SecAggClient {
 public:
  SecAggClient() = default;
  SecAggClient(const SecAggClient&) = delete;
  SecAggClient& operator=(const SecAggClient&) = delete;
  ~SecAggClient();

  std::string on_setup(std::string_view request);
  std::string on_share_keys(std::string_view request);
  // `update` has the request's dimension; `uniform` draws the stochastic
  // rounding (U[0,1)).
  std::string on_masked_input(std::string_view request, const float* update, std::size_t n, double num_examples,
                              const std::function<double()>& uniform);
  std::string on_unmask(std::string_view request);

  Stage next_stage() const { return next_; }
  // Test seam: the secrets this client must never send in the clear (its two
  // X25519 secret keys and its self-mask seed).
  std::vector<std::string> secrets_for_testing() const;
  std::uint32_t id() const { return setup_.id; }

 private:
  void expect(Stage stage) const;
  std::string what() const;

  Stage next_ = Stage::kSetup;
  SetupRequest setup_;
  KeyPair cipher_;
  KeyPair mask_;
  Key32 seed_{};
  std::map<std::uint32_t, PublicKeys> neighbour_keys_;  // advertised, incl. self
  struct Held {
    Share seed;
    Share mask_key;
  };
  std::map<std::uint32_t, Held> held_;  // owner -> the shares this client holds, incl. its own
};

}  // namespace fedtrack::secagg
