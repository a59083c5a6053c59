// Partitioners: split a labelled dataset's example indices among clients.
//
// Every example lands in exactly one partition; each partition lists its
// indices in increasing order; the same labels, spec and seed give the same
// partitions. Torch-free; pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "fedtrack/core/job_spec.h"

namespace fedtrack {

using Partitions = std::vector<std::vector<std::int64_t>>;

// Uniformly shuffled, sizes differ by at most one.
Partitions partition_iid(std::int64_t num_examples, std::int64_t num_clients, std::uint64_t seed);

// Label skew: for each class, client shares are drawn from Dirichlet(alpha).
// Smaller alpha = more skew. Redraws until every client holds at least
// min_partition_size examples; Error(kInvalidArgument) if that is impossible
// or not reached within a bounded number of draws.
Partitions partition_dirichlet(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                               double alpha, std::int64_t min_partition_size, std::uint64_t seed);

// Pathological non-IID (McMahan et al.): sort by label, cut into
// num_clients * classes_per_client shards, give each client that many shards.
Partitions partition_shard(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                           std::int64_t classes_per_client, std::uint64_t seed);

// Dispatches on spec.kind.
Partitions partition(const std::vector<std::int64_t>& labels, std::int64_t num_clients,
                     const PartitionSpec& spec, std::uint64_t seed);

// Mean over clients of the total-variation distance between the client's
// label distribution and the global one: 0 = IID, towards 1 = one class each.
double label_skew(const std::vector<std::int64_t>& labels, const Partitions& partitions);

}  // namespace fedtrack
