#include "test_set_info.h"

#include <algorithm>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/text.h"
#include "fedtrack/core/training.h"

namespace fedtrack {

DatasetInfo test_set_info(const JobSpec& job, const TestSplit& test) {
  DatasetInfo info;
  info.name = job.data.dataset + "-test";
  info.num_examples = test.size();
  if (job.data.dataset == "csv") {
    info.source = job.data.test_path.empty() ? job.data.path : job.data.test_path;
  } else {
    info.source = job.data.path.empty() ? default_dataset_path(job.data.dataset) : job.data.path;
  }
  info.source = redact_uri(info.source);
  // fingerprint(TensorData) hashes every label, then every feature byte:
  // the same bytes, a batch at a time.
  constexpr std::int64_t kBatch = 1024;
  const ExampleSource examples = test.examples();
  Sha256 hash;
  for (int pass = 0; pass < 2; ++pass) {
    const auto stream = examples.open();
    for (std::int64_t begin = 0; begin < examples.size; begin += kBatch) {
      const TensorData batch = stream->next(std::min(kBatch, examples.size - begin));
      const torch::Tensor t = (pass == 0 ? batch.labels : batch.features).contiguous();
      hash.update(t.data_ptr(), t.numel() * t.element_size());
    }
  }
  info.fingerprint = hash.hex();
  return info;
}

}  // namespace fedtrack
