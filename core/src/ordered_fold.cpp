#include "ordered_fold.h"

#include "fedtrack/core/error.h"

namespace fedtrack {

void OrderedFold::arrived(std::size_t index, FitResult result) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (index >= slots_.size() || slots_[index].resolved) {
    throw Error::invalid_argument("ordered fold: slot " + std::to_string(index) + " is out of range or resolved");
  }
  if (closed_) return;
  slots_[index].held = std::move(result);
  slots_[index].resolved = true;
  fold_ready_prefix();
}

void OrderedFold::failed(std::size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (index >= slots_.size() || slots_[index].resolved) return;
  slots_[index].resolved = true;
  fold_ready_prefix();
}

void OrderedFold::fold_ready_prefix() {
  while (next_ < slots_.size() && slots_[next_].resolved) {
    Slot& slot = slots_[next_];
    if (slot.held && !error_) {
      try {
        fold_.add(*slot.held);
        ++folded_;
      } catch (...) {
        error_ = std::current_exception();
      }
    }
    slot.held.reset();  // the update's tensors go back to the system here
    ++next_;
  }
  turn_.notify_all();
}

void OrderedFold::wait_turn(std::size_t index) {
  std::unique_lock<std::mutex> lock(mutex_);
  turn_.wait(lock, [&] { return closed_ || next_ >= index; });
}

void OrderedFold::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  for (auto& slot : slots_) slot.held.reset();
  turn_.notify_all();
}

std::size_t OrderedFold::folded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
  return folded_;
}

}  // namespace fedtrack
