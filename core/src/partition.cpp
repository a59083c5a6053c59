#include "fedtrack/core/partition.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

void check_clients(std::int64_t num_examples, std::int64_t num_clients) {
  if (num_clients < 1) throw Error::invalid_argument("partition: need at least one client");
  if (num_examples < num_clients) {
    throw Error::invalid_argument("partition: " + std::to_string(num_examples) +
                                  " examples cannot be split among " +
                                  std::to_string(num_clients) + " clients");
  }
}

std::map<std::int64_t, std::vector<std::int64_t>> indices_by_class(
    const std::vector<std::int64_t>& labels) {
  std::map<std::int64_t, std::vector<std::int64_t>> by_class;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(labels.size()); ++i) {
    by_class[labels[i]].push_back(i);
  }
  return by_class;
}

void sort_each(Partitions& parts) {
  for (auto& p : parts) std::sort(p.begin(), p.end());
}

}  // namespace

Partitions partition_iid(std::int64_t num_examples, std::int64_t num_clients, std::uint64_t seed) {
  check_clients(num_examples, num_clients);
  std::vector<std::int64_t> order(num_examples);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  Partitions parts(num_clients);
  for (std::int64_t i = 0; i < num_examples; ++i) parts[i % num_clients].push_back(order[i]);
  sort_each(parts);
  return parts;
}

Partitions partition_dirichlet(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                               double alpha, std::int64_t min_partition_size, std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(labels.size());
  check_clients(n, num_clients);
  if (!(alpha > 0)) throw Error::invalid_argument("partition: dirichlet alpha must be > 0");
  if (min_partition_size < 0) throw Error::invalid_argument("partition: min_partition_size must be >= 0");
  if (min_partition_size * num_clients > n) {
    throw Error::invalid_argument(
        "partition: min_partition_size " + std::to_string(min_partition_size) + " x " +
        std::to_string(num_clients) + " clients exceeds the " + std::to_string(n) + " examples");
  }
  const auto by_class = indices_by_class(labels);
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gamma(alpha, 1.0);
  constexpr int kMaxDraws = 1000;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    Partitions parts(num_clients);
    for (const auto& [label, members] : by_class) {
      std::vector<std::int64_t> shuffled = members;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      std::vector<double> share(num_clients);
      double total = 0;
      for (auto& s : share) total += (s = gamma(rng));
      if (!(total > 0)) {  // every draw underflowed: fall back to uniform shares
        std::fill(share.begin(), share.end(), 1.0);
        total = static_cast<double>(num_clients);
      }
      // Cut points from the cumulative shares; the last client takes the rest.
      const auto m = static_cast<std::int64_t>(shuffled.size());
      double cumulative = 0;
      std::int64_t start = 0;
      for (std::int64_t c = 0; c < num_clients; ++c) {
        cumulative += share[c];
        std::int64_t end = (c == num_clients - 1)
                               ? m
                               : std::min<std::int64_t>(m, static_cast<std::int64_t>(
                                                               cumulative / total * m + 0.5));
        end = std::max(end, start);
        parts[c].insert(parts[c].end(), shuffled.begin() + start, shuffled.begin() + end);
        start = end;
      }
    }
    bool big_enough = std::all_of(parts.begin(), parts.end(), [&](const auto& p) {
      return static_cast<std::int64_t>(p.size()) >= std::max<std::int64_t>(min_partition_size, 1);
    });
    if (big_enough) {
      sort_each(parts);
      return parts;
    }
  }
  throw Error::invalid_argument("partition: no Dirichlet(alpha=" + std::to_string(alpha) +
                                ") draw gave every client at least " +
                                std::to_string(min_partition_size) + " examples in " +
                                std::to_string(kMaxDraws) +
                                " tries; lower min_partition_size or raise alpha");
}

Partitions partition_shard(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                           std::int64_t classes_per_client, std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(labels.size());
  check_clients(n, num_clients);
  if (classes_per_client < 1) throw Error::invalid_argument("partition: classes_per_client must be >= 1");
  const std::int64_t num_shards = num_clients * classes_per_client;
  if (num_shards > n) {
    throw Error::invalid_argument("partition: " + std::to_string(num_shards) +
                                  " shards need at least as many examples, have " +
                                  std::to_string(n));
  }
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return labels[a] < labels[b]; });
  std::vector<std::int64_t> shard_ids(num_shards);
  std::iota(shard_ids.begin(), shard_ids.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(shard_ids.begin(), shard_ids.end(), rng);
  Partitions parts(num_clients);
  for (std::int64_t k = 0; k < num_shards; ++k) {
    const std::int64_t shard = shard_ids[k];
    const std::int64_t begin = shard * n / num_shards;
    const std::int64_t end = (shard + 1) * n / num_shards;
    auto& part = parts[k / classes_per_client];
    part.insert(part.end(), order.begin() + begin, order.begin() + end);
  }
  sort_each(parts);
  return parts;
}

Partitions partition(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                     const PartitionSpec& spec, std::uint64_t seed) {
  if (spec.kind == "iid") return partition_iid(static_cast<std::int64_t>(labels.size()), num_clients, seed);
  if (spec.kind == "dirichlet") {
    return partition_dirichlet(labels, num_clients, spec.alpha, spec.min_partition_size, seed);
  }
  if (spec.kind == "shard") return partition_shard(labels, num_clients, spec.classes_per_client, seed);
  throw Error::invalid_argument("partition: unknown kind '" + spec.kind +
                                "' (expected iid, dirichlet or shard)");
}

double label_skew(const std::vector<std::int64_t>& labels, const Partitions& partitions) {
  if (labels.empty() || partitions.empty()) return 0;
  std::map<std::int64_t, double> global;
  for (auto l : labels) global[l] += 1.0 / static_cast<double>(labels.size());
  double total = 0;
  for (const auto& part : partitions) {
    std::map<std::int64_t, double> local;
    for (auto i : part) local[labels[i]] += 1.0 / static_cast<double>(part.size());
    double tv = 0;
    for (const auto& [label, p] : global) {
      auto it = local.find(label);
      tv += std::abs((it == local.end() ? 0.0 : it->second) - p);
    }
    total += tv / 2;
  }
  return total / static_cast<double>(partitions.size());
}

}  // namespace fedtrack
