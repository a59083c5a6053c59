#include "virtual_clients.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <limits>
#include <random>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/torch_client.h"
#include "thread_pool.h"

namespace fedtrack {
namespace {

// A client as the server's proxy sees it: which client of the population.
class VirtualClientApp : public ClientApp {
 public:
  VirtualClientApp(std::shared_ptr<VirtualClients> clients, std::size_t index)
      : clients_(std::move(clients)), index_(index) {}
  FitRes fit(const Parameters& global, const ConfigRecord& config) override {
    return clients_->fit(index_, global, config);
  }
  EvaluateRes evaluate(const Parameters& global, const ConfigRecord& config) override {
    return clients_->evaluate(index_, global, config);
  }

 private:
  std::shared_ptr<VirtualClients> clients_;
  std::size_t index_;
};

}  // namespace

ClientShares::ClientShares(Partitions&& partitions, double val_fraction, std::uint64_t seed) {
  std::uint64_t total = 0;
  for (const auto& p : partitions) total += p.size();
  rows_.reserve(total);
  begin_.reserve(partitions.size() + 1);
  num_val_.reserve(partitions.size());
  begin_.push_back(0);
  for (std::size_t c = 0; c < partitions.size(); ++c) {
    std::vector<std::int64_t> share = std::move(partitions[c]);
    partitions[c] = {};
    std::mt19937_64 rng(seed + 1000003ull * static_cast<std::uint64_t>(c + 1));
    std::shuffle(share.begin(), share.end(), rng);
    const auto n_val = static_cast<std::size_t>(static_cast<double>(share.size()) * val_fraction);
    const auto split = share.begin() + static_cast<std::ptrdiff_t>(n_val);
    std::sort(share.begin(), split);
    std::sort(split, share.end());
    for (const std::int64_t row : share) {
      if (row < 0 || static_cast<std::uint64_t>(row) > std::numeric_limits<std::uint32_t>::max()) {
        throw Error::invalid_argument("client " + std::to_string(c) + ": training row " + std::to_string(row) +
                                      " is outside 0..4294967295 (the simulation indexes rows with 32 bits)");
      }
      rows_.push_back(static_cast<std::uint32_t>(row));
    }
    begin_.push_back(rows_.size());
    num_val_.push_back(static_cast<std::uint32_t>(n_val));
  }
}

RowSpan ClientShares::validation(std::size_t client) const {
  return {rows_.data() + begin_.at(client), num_val_.at(client)};
}

RowSpan ClientShares::train(std::size_t client) const {
  const std::uint64_t first = begin_.at(client) + num_val_.at(client);
  return {rows_.data() + first, static_cast<std::size_t>(begin_.at(client + 1) - first)};
}

TensorData gather_rows(const TensorData& data, RowSpan rows) {
  torch::Tensor index = torch::empty({static_cast<std::int64_t>(rows.size)}, torch::kLong);
  std::int64_t* out = index.data_ptr<std::int64_t>();
  for (const std::uint32_t row : rows) *out++ = row;
  return {data.features.index_select(0, index), data.labels.index_select(0, index)};
}

std::string fingerprint_rows(const TensorData& data, RowSpan rows) {
  const torch::Tensor labels = data.labels.contiguous();
  const torch::Tensor features = data.features.contiguous();
  if (labels.scalar_type() != torch::kLong || rows.size == 0) return fingerprint(gather_rows(data, rows));
  // The bytes fingerprint() hashes: the picked labels, then the picked
  // feature rows, each contiguous.
  Sha256 hash;
  std::vector<std::int64_t> picked;
  picked.reserve(rows.size);
  const std::int64_t* label = labels.data_ptr<std::int64_t>();
  for (const std::uint32_t row : rows) picked.push_back(label[row]);
  hash.update(picked.data(), picked.size() * sizeof(std::int64_t));
  const std::size_t row_bytes = features.size(0) == 0 ? 0 : features.nbytes() / static_cast<std::size_t>(features.size(0));
  const auto* bytes = static_cast<const char*>(features.data_ptr());
  for (const std::uint32_t row : rows) hash.update(bytes + row * row_bytes, row_bytes);
  return hash.hex();
}

ModelReplicas::ModelReplicas(std::vector<torch::nn::AnyModule> models) : free_(std::move(models)) {
  if (free_.empty()) throw Error::invalid_argument("model replicas: need at least one");
}

ModelReplicas::Lease ModelReplicas::acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  returned_.wait(lock, [this] { return !free_.empty(); });
  torch::nn::AnyModule model = std::move(free_.back());
  free_.pop_back();
  return Lease(*this, std::move(model));
}

ModelReplicas::Lease::~Lease() {
  if (!owner_) return;
  {
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    owner_->free_.push_back(std::move(model_));
  }
  owner_->returned_.notify_one();
}

std::shared_ptr<VirtualClients> VirtualClients::create(TensorData train, ClientShares shares,
                                                       const std::function<torch::nn::AnyModule()>& make_model,
                                                       std::size_t replicas, std::uint64_t seed) {
  std::vector<torch::nn::AnyModule> models;
  for (std::size_t i = 0; i < std::max<std::size_t>(replicas, 1); ++i) models.push_back(make_model());
  // Contiguous once, so every gather and fingerprint reads rows in place.
  train.features = train.features.contiguous();
  train.labels = train.labels.contiguous();
  return std::shared_ptr<VirtualClients>(new VirtualClients(std::move(train), std::move(shares), std::move(models), seed));
}

VirtualClients::VirtualClients(TensorData train, ClientShares shares, std::vector<torch::nn::AnyModule> replicas,
                               std::uint64_t seed)
    : train_(std::move(train)), shares_(std::move(shares)), replicas_(std::move(replicas)), seed_(seed) {
  fingerprints_.resize(shares_.size());
  // Hashing every training row once is most of the set-up: the clients are
  // independent, so spread them over the cores (each slot has one writer).
  const std::size_t threads = std::max<std::size_t>(1, std::min(ThreadPool::cores(), shares_.size()));
  ThreadPool pool(threads);
  std::vector<std::future<void>> done;
  for (std::size_t t = 0; t < threads; ++t) {
    done.push_back(pool.submit([this, t, threads] {
      for (std::size_t c = t; c < shares_.size(); c += threads) {
        const std::string hex = fingerprint_rows(train_, shares_.train(c));
        std::memcpy(fingerprints_[c].data(), hex.data(), std::min(hex.size(), fingerprints_[c].size()));
      }
    }));
  }
  for (auto& d : done) d.get();
}

std::shared_ptr<ClientApp> VirtualClients::app(std::size_t client) {
  if (client >= size()) throw Error::invalid_argument("virtual client " + std::to_string(client) + " does not exist");
  return std::make_shared<VirtualClientApp>(shared_from_this(), client);
}

std::string VirtualClients::fingerprint(std::size_t client) const {
  const auto& f = fingerprints_.at(client);
  return std::string(f.data(), f.size());
}

FitRes VirtualClients::fit(std::size_t client, const Parameters& global, const ConfigRecord& config) {
  const ModelReplicas::Lease model = replicas_.acquire();
  TorchClient app(model.model(), gather_rows(train_, shares_.train(client)), TensorData{},
                  seed_ * 7919ull + static_cast<std::uint64_t>(client), fingerprint(client));
  return app.fit(global, config);
}

EvaluateRes VirtualClients::evaluate(std::size_t client, const Parameters& global, const ConfigRecord& config) {
  const ModelReplicas::Lease model = replicas_.acquire();
  TorchClient app(model.model(), TensorData{}, gather_rows(train_, shares_.validation(client)),
                  seed_ * 7919ull + static_cast<std::uint64_t>(client), fingerprint(client));
  return app.evaluate(global, config);
}

}  // namespace fedtrack
