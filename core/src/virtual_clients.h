// Private to core: the simulation's virtual clients, built when sampled
// (Flower's client_fn idea).
//
// A virtual client is an index, its share of the training split (the rows
// it trains on and the rows it keeps for evaluation, 4 bytes per row, all
// clients in one array) and the fingerprint of its training rows (computed
// once, at set-up). Its ClientApp is a handle of a few bytes; the real
// client — a model replica and its rows gathered from the training split —
// is built for each fit or evaluate call and given back when the call
// returns. The replicas come from a pool of `parallelism` models made at
// set-up, so memory is the training split, ~100 bytes per client and one
// model + one share per call in flight, however many clients there are
// (a model replica per client was 0.9 MB each for the default MLP).
//
// What a client computes is what a TorchClient holding its share and its own
// model computed before: the same rows in the same order, the same seed, a
// replica whose every parameter and buffer fit()/evaluate() overwrite with
// the global model's. Thread-safe: calls for different clients may run
// concurrently (the server never runs two calls of one client at once).
#pragma once

#include <torch/nn/modules/container/any.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fedtrack/core/client_app.h"
#include "fedtrack/core/partition.h"
#include "fedtrack/core/training.h"

namespace fedtrack {

// Row indices of one client's examples, increasing.
struct RowSpan {
  const std::uint32_t* rows = nullptr;
  std::size_t size = 0;
  const std::uint32_t* begin() const { return rows; }
  const std::uint32_t* end() const { return rows + size; }
};

// Every client's share of the training split. Client c keeps the first
// floor(|share| * val_fraction) rows of its share shuffled with
// mt19937_64(seed + 1000003 * (c + 1)) for evaluation and trains on the
// rest, both sorted (the split the simulation has always made).
class ClientShares {
 public:
  // Takes the partitions apart as it goes, so they and the shares are not
  // both held whole. Error(kInvalidArgument) for more rows than 32 bits index.
  ClientShares(Partitions&& partitions, double val_fraction, std::uint64_t seed);

  std::size_t size() const { return num_val_.size(); }
  RowSpan train(std::size_t client) const;
  RowSpan validation(std::size_t client) const;

 private:
  std::vector<std::uint32_t> rows_;   // client by client: validation rows, then training rows
  std::vector<std::uint64_t> begin_;  // client c's rows are [begin_[c], begin_[c + 1])
  std::vector<std::uint32_t> num_val_;
};

// `rows` of `data` (a copy): select_rows for a RowSpan.
TensorData gather_rows(const TensorData& data, RowSpan rows);

// fingerprint(gather_rows(data, rows)) without the copy.
std::string fingerprint_rows(const TensorData& data, RowSpan rows);

// A fixed set of model replicas lent to one call at a time.
class ModelReplicas {
 public:
  explicit ModelReplicas(std::vector<torch::nn::AnyModule> models);

  // A replica, given back when the lease ends; waits while all are lent.
  class Lease {
   public:
    Lease(ModelReplicas& owner, torch::nn::AnyModule model) : owner_(&owner), model_(std::move(model)) {}
    Lease(Lease&& other) noexcept : owner_(other.owner_), model_(std::move(other.model_)) { other.owner_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    const torch::nn::AnyModule& model() const { return model_; }

   private:
    ModelReplicas* owner_;
    torch::nn::AnyModule model_;
  };
  Lease acquire();

 private:
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<torch::nn::AnyModule> free_;
};

class VirtualClients : public std::enable_shared_from_this<VirtualClients> {
 public:
  // `train` is the whole training split, kept (shared) for the whole job.
  // `replicas` models, made by `make_model` now; `seed`: client c's own
  // seed is seed * 7919 + c. Computes every client's fingerprint: time
  // linear in the training split.
  static std::shared_ptr<VirtualClients> create(TensorData train, ClientShares shares,
                                                const std::function<torch::nn::AnyModule()>& make_model,
                                                std::size_t replicas, std::uint64_t seed);

  std::size_t size() const { return shares_.size(); }
  const ClientShares& shares() const { return shares_; }
  // The client's ClientApp: a handle that builds it for each call.
  std::shared_ptr<ClientApp> app(std::size_t client);
  // SHA-256 (hex) of the client's training rows, as its FitRes reports it.
  std::string fingerprint(std::size_t client) const;

  FitRes fit(std::size_t client, const Parameters& global, const ConfigRecord& config);
  EvaluateRes evaluate(std::size_t client, const Parameters& global, const ConfigRecord& config);

 private:
  VirtualClients(TensorData train, ClientShares shares, std::vector<torch::nn::AnyModule> replicas,
                 std::uint64_t seed);

  const TensorData train_;
  const ClientShares shares_;
  std::vector<std::array<char, 64>> fingerprints_;
  ModelReplicas replicas_;
  const std::uint64_t seed_;
};

}  // namespace fedtrack
