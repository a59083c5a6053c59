// One spare set of tensors for the server's uploads: the next fit result is
// read into it when nothing holds it any more (the previous update was
// folded and released), so an upload costs no allocation and no page
// faults — the socket's bytes land in memory that is already mapped, as in
// a raw TCP receive. When it is still in use (strategies that keep every
// update until aggregation, two uploads at once) the upload gets fresh
// tensors. Thread-safe. Holds at most one model's worth of memory.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "fedtrack/core/parameters.h"

namespace fedtrack::net {

class UploadSpare {
 public:
  // Tensors with `layout`'s names, shapes and dtypes for an upload to be
  // read into (parameter_stream.h's `into`), or nullptr: allocate.
  std::unique_ptr<Parameters> take(const Parameters& layout);

 private:
  std::mutex mutex_;
  std::vector<torch::Tensor> spare_;
  bool in_use() const;
};

}  // namespace fedtrack::net
