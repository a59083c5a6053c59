#include "fedtrack/core/client_manager.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/state_record.h"

namespace fedtrack {

ClientManager::ClientManager(std::uint64_t seed) : rng_(seed) {}

namespace {

// The first client whose id is not below `id`.
template <typename Clients>
auto position_of(Clients& clients, const std::string& id) {
  return std::lower_bound(clients.begin(), clients.end(), id,
                          [](const std::shared_ptr<ClientProxy>& c, const std::string& key) { return c->id() < key; });
}

}  // namespace

void ClientManager::add(std::shared_ptr<ClientProxy> client) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string id = client->id();
    // Clients registered in id order (the simulation's) append at the end.
    const auto at = clients_.empty() || clients_.back()->id() < id ? clients_.end() : position_of(clients_, id);
    if (at != clients_.end() && (*at)->id() == id) {
      throw Error(ErrorCode::kAlreadyExists, "client '" + id + "' is already registered");
    }
    clients_.insert(at, std::move(client));
  }
  changed_.notify_all();
}

void ClientManager::remove(const std::string& client_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = position_of(clients_, client_id);
    if (at != clients_.end() && (*at)->id() == client_id) clients_.erase(at);
  }
  changed_.notify_all();
}

std::size_t ClientManager::num_available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return clients_.size();
}

std::vector<std::shared_ptr<ClientProxy>> ClientManager::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return clients_;
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
  const std::size_t n = clients_.size();
  const std::size_t k = std::min(num_clients, n);
  // A partial Fisher-Yates shuffle of the positions 0..n-1 with our own
  // index draws (the same seed gives the same picks on every standard
  // library), kept sparse: only the positions a swap moved are stored, so a
  // round costs O(k) however many clients there are. Position i is never
  // read again after step i, so only j's new value needs keeping.
  std::unordered_map<std::size_t, std::size_t> moved;  // position -> the client index it now holds
  moved.reserve(2 * k);
  const auto held_at = [&moved](std::size_t position) {
    const auto it = moved.find(position);
    return it == moved.end() ? position : it->second;
  };
  std::vector<std::size_t> picks(k);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t span = n - i;
    const std::size_t j = i + static_cast<std::size_t>(rng_() % span);
    const std::size_t at_i = held_at(i);
    picks[i] = held_at(j);
    moved[j] = at_i;
  }
  std::sort(picks.begin(), picks.end());  // clients_ is in id order
  std::vector<std::shared_ptr<ClientProxy>> out;
  out.reserve(k);
  for (const std::size_t p : picks) out.push_back(clients_[p]);
  return out;
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
