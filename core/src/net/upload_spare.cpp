#include "net/upload_spare.h"

namespace fedtrack::net {

bool UploadSpare::in_use() const {
  for (const auto& t : spare_) {
    if (t.use_count() != 1 || t.storage().use_count() != 1) return true;
  }
  return false;
}

std::unique_ptr<Parameters> UploadSpare::take(const Parameters& layout) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool fits = spare_.size() == layout.size();
  for (std::size_t i = 0; fits && i < spare_.size(); ++i) {
    fits = spare_[i].sizes() == layout.tensors[i].sizes() && spare_[i].scalar_type() == layout.tensors[i].scalar_type();
  }
  if (!fits) {
    spare_.clear();
    for (const auto& t : layout.tensors) spare_.push_back(torch::empty(t.sizes(), t.options().device(torch::kCPU)));
  } else if (in_use()) {
    return nullptr;
  }
  auto out = std::make_unique<Parameters>();
  out->names = layout.names;
  out->buffer_begin = layout.buffer_begin;
  out->tensors = spare_;  // shares the storage; the spare's handles keep it for the next upload
  return out;
}

}  // namespace fedtrack::net
