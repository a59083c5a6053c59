#include <filesystem>

#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/network.h"
#include "fedtrack/core/partition.h"
#include "job_runtime.h"

namespace fedtrack {

std::vector<std::int64_t> write_job_shards(const JobSpec& job, const std::string& out_dir,
                                           const std::function<void(const std::string&)>& log) {
  DatasetSplits data = at_key(job, "data.dataset", [&] { return load_dataset(job.data, job.seed, /*scale=*/false); });
  std::vector<std::int64_t> labels(data.train.labels.data_ptr<std::int64_t>(),
                                   data.train.labels.data_ptr<std::int64_t>() + data.train.size());
  const Partitions parts =
      at_key(job, "data.partition", [&] { return partition(labels, job.clients.count, job.data.partition, job.seed); });
  std::vector<std::int64_t> sizes;
  for (std::size_t c = 0; c < parts.size(); ++c) {
    const std::string dir = (std::filesystem::path(out_dir) / std::to_string(c)).string();
    write_shard(dir, data, parts[c]);
    sizes.push_back(static_cast<std::int64_t>(parts[c].size()));
    if (log) log(dir + ": " + std::to_string(parts[c].size()) + " examples");
  }
  return sizes;
}

}  // namespace fedtrack
