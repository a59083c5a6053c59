// A fixed-size pool of worker threads. Torch-free.
//
// Tasks run in submission order as workers free up; submit() returns a future
// that carries the task's result or exception. The destructor finishes the
// queued tasks, then joins. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <type_traits>
#include <vector>

namespace fedtrack {

class ThreadPool {
 public:
  // `on_thread_start` runs once on each worker before it takes tasks (e.g. to
  // set LibTorch's per-thread intra-op thread count).
  explicit ThreadPool(std::size_t threads, std::function<void()> on_thread_start = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const { return workers_.size(); }

  template <typename F>
  std::future<std::invoke_result_t<F>> submit(F task) {
    using R = std::invoke_result_t<F>;
    auto packaged = std::make_shared<std::packaged_task<R()>>(std::move(task));
    std::future<R> result = packaged->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push([packaged] { (*packaged)(); });
    }
    ready_.notify_one();
    return result;
  }

  // Threads to use for "one per core": std::thread::hardware_concurrency(), at least 1.
  static std::size_t cores();

 private:
  void work(const std::function<void()>& on_thread_start);

  std::mutex mutex_;
  std::condition_variable ready_;
  std::queue<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace fedtrack
