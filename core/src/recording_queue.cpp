#include "recording_queue.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace fedtrack {

namespace {
constexpr int kRecordingNice = 10;  // relative to the process; best effort
}  // namespace

RecordingQueue::RecordingQueue(bool hold) : hold_(hold), worker_([this] { work(); }) {}

RecordingQueue::~RecordingQueue() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !pending_; });
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void RecordingQueue::push(Record record) {
  wait();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ = std::move(record);
    released_ = !hold_;
  }
  changed_.notify_all();
}

void RecordingQueue::wait() {
  std::exception_ptr failure;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !pending_; });
    std::swap(failure, failure_);
  }
  if (failure) std::rethrow_exception(failure);
}

void RecordingQueue::rethrow_if_failed() {
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::swap(failure, failure_);
  }
  if (failure) std::rethrow_exception(failure);
}

void RecordingQueue::work() {
  // Below the round loop's threads: training (and its OpenMP teams, which
  // spin while a peer is descheduled) keeps the cores; the record takes
  // what they leave, and the whole core whenever the loop waits for it.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kRecordingNice);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (pending_ && released_); });
    if (stopping_) return;
    Record record = pending_;
    const bool failed_before = static_cast<bool>(failure_);
    lock.unlock();
    std::exception_ptr failure;
    if (!failed_before) {  // nothing records after a failed record
      try {
        record();
      } catch (...) {
        failure = std::current_exception();
      }
    }
    lock.lock();
    if (failure) failure_ = failure;
    pending_ = nullptr;
    changed_.notify_all();
  }
}

}  // namespace fedtrack
