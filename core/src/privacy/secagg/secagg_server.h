// SecAggServer — the server's side of one SecAgg+ round (Bell et al., CCS
// 2020; the stage structure of Flower's secaggplus workflow), transport-free.
//
// Clients are secure ids 1..n (the runtime maps them to sites). Stage 0 (the
// constructor) shuffles them into a ring and makes each client's
// neighbourhood the `num_shares` ids around it (itself included). Then, for
// each of the four stages:
//     for id in participants(): send request(id), feed the reply to accept()
//     (or report a transport failure / timeout with drop());
//     close_stage();
// accept() checks everything a reply carries against what this client may
// send; on any failure it throws Error (kCorruption / kInvalidArgument: the
// transport answers 4xx) and the client counts as dropped from then on.
// close_stage() drops whoever did not answer and throws Error(kUnavailable)
// when the survivors can no longer rebuild what is needed: the round fails
// cleanly and nothing is released. After stage 4, result() unmasks the sum
// and returns the weighted mean of the survivors' clipped, quantized updates.
//
// The server requests, from each stage-4 participant, the seed shares of
// stage-3 survivors and the mask-key shares of clients that dropped after
// stage 2 — never both for one client — and refuses any other share.
// Not thread-safe: one thread drives a round (a transport may collect
// replies concurrently and feed them in under its own lock).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "privacy/secagg/secagg_messages.h"
#include "privacy/secagg/shamir.h"

namespace fedtrack::secagg {

// num_shares / reconstruction_threshold as a job file gives them: a count,
// or a fraction in (0, 1] (1 as an integer means "all", as in Flower).
struct ShareCount {
  double value = 0;
  bool fraction = false;
};

struct RoundPlan {
  std::uint32_t num_shares = 0;  // neighbourhood size, the client itself included
  std::uint32_t threshold = 0;
};
// Flower's resolution for `clients` sampled clients (fraction -> round half
// even, odd when below all, <= 2 -> all; threshold fraction -> at least 2),
// capped at the number of clients. Error(kInvalidArgument) when fewer than 2
// clients or the threshold exceeds num_shares.
RoundPlan plan_round(ShareCount num_shares, ShareCount threshold, std::size_t clients);

struct SecAggResult {
  std::vector<float> mean;            // weighted mean, `dimension` values
  std::vector<std::uint32_t> summed;  // clients in the sum (stage-3 survivors)
  double total_weight = 0;            // Σ quantized weights / quantization_range
};

class SecAggServer {
 public:
  SecAggServer(std::uint64_t round, std::size_t clients, RoundPlan plan, QuantizationParams quantization,
               std::size_t dimension, std::uint64_t graph_seed);

  Stage stage() const { return stage_; }
  // The clients that get this stage's request (those not dropped).
  std::vector<std::uint32_t> participants() const;
  std::string request(std::uint32_t id);
  void accept(std::uint32_t id, std::string_view reply);
  void drop(std::uint32_t id, const std::string& reason);
  void close_stage();
  SecAggResult result();

  const std::set<std::uint32_t>& neighbours(std::uint32_t id) const { return clients_.at(id).neighbours; }
  const std::map<std::uint32_t, std::string>& dropped() const { return dropped_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }
  // Test-only seam: sees every reply buffer the server receives.
  void set_receive_hook(std::function<void(std::uint32_t, std::string_view)> hook) { hook_ = std::move(hook); }

 private:
  struct Client {
    std::set<std::uint32_t> neighbours;  // itself included
    PublicKeys keys;
    std::map<std::uint32_t, std::string> outgoing;  // recipient -> ciphertext
    std::vector<std::uint32_t> masked;
    bool replied = false;  // this stage
  };
  bool alive(std::uint32_t id) const { return dropped_.count(id) == 0; }
  std::string what(std::uint32_t id) const;
  void accept_keys(std::uint32_t id, std::string_view reply);
  void accept_shares(std::uint32_t id, std::string_view reply);
  void accept_masked(std::uint32_t id, std::string_view reply);
  void accept_unmask(std::uint32_t id, std::string_view reply);
  // Error(kUnavailable) unless every secret still needed has >= threshold
  // living holders.
  void check_recoverable() const;

  std::uint64_t round_;
  RoundPlan plan_;
  QuantizationParams quantization_;
  std::size_t dimension_;
  Stage stage_ = Stage::kSetup;
  std::map<std::uint32_t, Client> clients_;
  std::set<std::uint32_t> advertised_;  // U1
  std::set<std::uint32_t> shared_;      // U2
  std::set<std::uint32_t> masked_;      // U3
  std::map<std::uint32_t, std::string> dropped_;
  std::map<std::uint32_t, std::vector<Share>> seed_shares_;      // owner in U3
  std::map<std::uint32_t, std::vector<Share>> mask_key_shares_;  // owner in U2 \ U3
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::function<void(std::uint32_t, std::string_view)> hook_;
};

}  // namespace fedtrack::secagg
