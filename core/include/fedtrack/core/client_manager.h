// ClientManager — the set of connected clients and seeded sampling from it.
//
// Clients are kept in id order, so sampling with the same seed over the same
// clients picks the same ones, and samples come back sorted by id (the order
// in which results are aggregated). Sampling k of K clients costs O(k), not
// O(K): the simulation registers up to 100,000 virtual clients and samples a
// few per round. Thread-safe: clients may register and leave while the
// server samples. Torch-free: proxies are only pointed to.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace fedtrack {

class ClientProxy;

class ClientManager {
 public:
  explicit ClientManager(std::uint64_t seed);

  // Error(kAlreadyExists) if a client with the same id is registered.
  // O(1) amortized when clients are added in id order, else O(K).
  void add(std::shared_ptr<ClientProxy> client);
  void remove(const std::string& client_id);

  std::size_t num_available() const;
  std::vector<std::shared_ptr<ClientProxy>> all() const;  // id order

  // Blocks until at least `count` clients are registered or `timeout` passes;
  // returns whether they are.
  bool wait_for(std::size_t count, std::chrono::milliseconds timeout) const;

  // Uniformly samples min(num_clients, available) distinct clients, sorted by
  // id. Error(kUnavailable) if fewer than `min_num_clients` are available
  // after waiting up to `timeout`.
  std::vector<std::shared_ptr<ClientProxy>> sample(
      std::size_t num_clients, std::size_t min_num_clients,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // The sampling RNG's exact state, so a resumed job samples as if it had
  // never stopped.
  std::string rng_state() const;
  void restore_rng_state(const std::string& state);

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::shared_ptr<ClientProxy>> clients_;  // sorted by id, ids unique
  std::mt19937_64 rng_;
};

// Flower's rule: max(floor(available * fraction), minimum), at most available.
std::size_t clients_to_sample(std::size_t available, double fraction, std::size_t minimum);

}  // namespace fedtrack
