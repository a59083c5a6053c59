// A Clock for tests of net::SiteRegistry: time moves only when the test
// calls advance(), which wakes every wait. No test sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "net/site_registry.h"

namespace fedtrack::testing {

class FakeClock : public net::Clock {
 public:
  time_point now() const override { return time_point(std::chrono::nanoseconds(now_ns_.load())); }

  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point until) override {
    const Waiter me{lock.mutex(), &cv};
    {
      std::lock_guard<std::mutex> guard(mutex_);
      waiters_.push_back(me);
      ++waits_;
    }
    waiting_changed_.notify_all();
    if (now() < until) {
      cv.wait(lock);  // advance() takes the waiter's mutex before it notifies: no lost wake-up
    } else {
      // As a real timed wait does, let others take the lock (a caller that
      // loops on a past time must not shut out stop()).
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
    std::lock_guard<std::mutex> guard(mutex_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->mutex == me.mutex && it->cv == me.cv) {
        waiters_.erase(it);
        break;
      }
    }
  }

  void advance(double seconds) {
    now_ns_ += static_cast<long long>(seconds * 1e9);
    std::vector<Waiter> waiters;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      waiters = waiters_;
    }
    for (const auto& w : waiters) {
      std::lock_guard<std::mutex> guard(*w.mutex);
      w.cv->notify_all();
    }
  }

  // Blocks (on a condition variable, never a sleep) until `n` waits have
  // begun since the clock was made: a thread that waits again after an
  // advance() has seen the new time.
  void await_waits(std::uint64_t n) {
    std::unique_lock<std::mutex> guard(mutex_);
    waiting_changed_.wait(guard, [&] { return waits_ >= n; });
  }

 private:
  struct Waiter {
    std::mutex* mutex;
    std::condition_variable* cv;
  };
  std::atomic<long long> now_ns_{1'000'000'000'000};
  std::mutex mutex_;
  std::condition_variable waiting_changed_;
  std::vector<Waiter> waiters_;
  std::uint64_t waits_ = 0;
};

}  // namespace fedtrack::testing
