#include "fedtrack/core/client_manager.h"

#include <algorithm>
#include <cmath>

#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/state_record.h"

namespace fedtrack {

ClientManager::ClientManager(std::uint64_t seed) : rng_(seed) {}

void ClientManager::add(std::shared_ptr<ClientProxy> client) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string id = client->id();
    if (!clients_.emplace(id, std::move(client)).second) {
      throw Error(ErrorCode::kAlreadyExists, "client '" + id + "' is already registered");
    }
  }
  changed_.notify_all();
}

void ClientManager::remove(const std::string& client_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    clients_.erase(client_id);
  }
  changed_.notify_all();
}

std::size_t ClientManager::num_available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return clients_.size();
}

std::vector<std::shared_ptr<ClientProxy>> ClientManager::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<ClientProxy>> out;
  out.reserve(clients_.size());
  for (const auto& [id, client] : clients_) out.push_back(client);
  return out;
}

bool ClientManager::wait_for(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return clients_.size() >= count; });
}

std::vector<std::shared_ptr<ClientProxy>> ClientManager::sample(std::size_t num_clients,
                                                                std::size_t min_num_clients,
                                                                std::chrono::milliseconds timeout) {
  if (!wait_for(min_num_clients, timeout)) {
    throw Error::unavailable("need at least " + std::to_string(min_num_clients) +
                             " clients, " + std::to_string(num_available()) + " available");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<ClientProxy>> pool;
  pool.reserve(clients_.size());
  for (const auto& [id, client] : clients_) pool.push_back(client);
  const std::size_t k = std::min(num_clients, pool.size());
  // Partial Fisher-Yates with our own index draws: the same seed gives the
  // same picks on every standard library.
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t span = pool.size() - i;
    const std::size_t j = i + static_cast<std::size_t>(rng_() % span);
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  std::sort(pool.begin(), pool.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  return pool;
}

std::size_t clients_to_sample(std::size_t available, double fraction, std::size_t minimum) {
  const auto by_fraction = static_cast<std::size_t>(std::floor(static_cast<double>(available) * fraction));
  return std::min(available, std::max(by_fraction, minimum));
}

std::string ClientManager::rng_state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return encode_rng(rng_);
}

void ClientManager::restore_rng_state(const std::string& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  rng_ = decode_rng(state);
}

}  // namespace fedtrack
