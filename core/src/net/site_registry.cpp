#include "net/site_registry.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace fedtrack::net {
namespace {

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point until) override {
    cv.wait_until(lock, until);
  }
};

std::string random_hex(std::size_t bytes) {
  std::random_device entropy;
  std::string out;
  char buf[3];
  for (std::size_t i = 0; i < bytes; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", entropy() & 0xff);
    out += buf;
  }
  return out;
}

Clock::time_point after(Clock::time_point t, double seconds) {
  return t + std::chrono::duration_cast<Clock::time_point::duration>(std::chrono::duration<double>(seconds));
}

std::string whole_seconds(double s) { return std::to_string(static_cast<int>(s)); }

}  // namespace

Clock& steady_clock() {
  static SteadyClock clock;
  return clock;
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

SiteRegistry::SiteRegistry(RegistryLimits limits, Clock& clock, Log log, Availability on_available)
    : limits_(limits), clock_(clock), log_(std::move(log)), on_available_(std::move(on_available)) {}

// --- under mutex_ ---------------------------------------------------------------

void SiteRegistry::wait(std::unique_lock<std::mutex>& lock, Clock::time_point until) {
  clock_.wait_until(lock, changed_, until);
}

bool SiteRegistry::silent(const Site& site) const {
  return site.open_requests == 0 && seconds_between(site.last_seen, clock_.now()) > limits_.client_timeout;
}

void SiteRegistry::set_available(const std::string& name, Site& site, bool available, const std::string& why) {
  if (site.available == available) return;
  site.available = available;
  if (on_available_) on_available_(name, available);
  if (!available && log_) log_("client " + name + " left: " + why);
}

void SiteRegistry::prune_silent() {
  const auto now = clock_.now();
  for (auto& [name, site] : sites_) {
    if (site.available && silent(site)) {
      set_available(name, site, false, "silent for " + whole_seconds(seconds_between(site.last_seen, now)) + " s");
    }
  }
}

std::size_t SiteRegistry::available_count() const {
  return static_cast<std::size_t>(
      std::count_if(sites_.begin(), sites_.end(), [](const auto& entry) { return entry.second.available; }));
}

SiteRegistry::Site& SiteRegistry::session_site(const std::string& name, const std::string& session) {
  auto it = sites_.find(name);
  if (it == sites_.end() || it->second.session.empty() || it->second.session != session) {
    throw SiteConflict("unknown session (the server restarted or the client joined again): join again");
  }
  it->second.last_seen = clock_.now();
  return it->second;
}

// --- the HTTP side --------------------------------------------------------------

SiteRegistry::Joining SiteRegistry::join(const std::string& name, const std::string& instance,
                                         const std::string& address, const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  Site& site = sites_[name];
  const bool again = !site.session.empty();
  const auto now = clock_.now();
  // One token, one process: another process joining with the token of a
  // live session is refused (it would take the session over, and the two
  // would take it from each other in a loop).
  if (again && site.instance != instance && !silent(site)) {
    ++site.refused_joins;
    if (!site.warned || seconds_between(*site.warned, now) >= limits_.shared_token_warning_seconds) {
      site.warned = now;
      if (log_) {
        log_("warning: the token of client " + name + " is used by more than one process: a join from " + address +
             " was refused while the session from " + site.address + " is live (" +
             std::to_string(site.refused_joins) + " refused so far; next warning in " +
             whole_seconds(limits_.shared_token_warning_seconds) + " s at the earliest)");
      }
    }
    throw SiteConflict("token of '" + name + "' already in use by a live session from " + site.address +
                           "; wait for it to end (silent for server.client_timeout = " +
                           whole_seconds(limits_.client_timeout) + " s) or use another token",
                       false);
  }
  site.instance = instance;
  site.address = address;
  site.session = random_hex(16);
  site.last_seen = now;
  if (site.task && site.task->delivered && !site.task->done) {
    site.task->outcome.failure = "the client joined again and lost its task";
    site.task->done = true;
  }
  set_available(name, site, true, "");
  changed_.notify_all();
  Joining joining{site.session, again, available_count()};
  if (log_) {
    log_("client " + name + (again ? " joined again" : " joined") + " from " + endpoint + " (" +
         std::to_string(joining.connected) + " connected)");
  }
  return joining;
}

void SiteRegistry::heartbeat(const std::string& name, const std::string& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  session_site(name, session);
}

SiteRegistry::PollAnswer SiteRegistry::poll(const std::string& name, const std::string& session) {
  std::unique_lock<std::mutex> lock(mutex_);
  Site& site = session_site(name, session);
  if (!done_) set_available(name, site, true, "");
  const auto until = after(clock_.now(), limits_.poll_seconds);
  PollAnswer answer;
  while (true) {
    if (site.session != session) throw SiteConflict("session replaced by a newer join");
    // A task not yet delivered, or delivered to this session that asks again (it lost it).
    const auto& t = site.task;
    if (t && !t->done && (!t->delivered || t->delivered_session == session)) {
      t->delivered = true;
      t->delivered_session = session;
      answer.task = t;
      break;
    }
    if (done_) {
      answer.done = true;
      break;
    }
    if (stopping_ || clock_.now() >= until) break;
    wait(lock, until);
  }
  site.last_seen = clock_.now();
  return answer;
}

void SiteRegistry::task_sent(SiteTask& task) {
  std::lock_guard<std::mutex> lock(mutex_);
  task.download_seconds = seconds_between(task.posted, clock_.now());
}

void SiteRegistry::told_done(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = sites_.find(name); it != sites_.end()) it->second.told_done = true;
  changed_.notify_all();
}

bool SiteRegistry::request_started(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end()) return false;
  ++it->second.open_requests;
  return true;
}

void SiteRegistry::request_ended(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end()) return;
  --it->second.open_requests;
  it->second.last_seen = clock_.now();
}

std::shared_ptr<SiteTask> SiteRegistry::open_task(const std::string& name, const std::string& session,
                                                  std::int64_t task_id, std::int64_t round, MessageKind result_kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  Site& site = session_site(name, session);
  const auto task = site.task;
  if (!task || task->done || static_cast<std::int64_t>(task->id) != task_id) {
    throw SiteConflict("no open task " + std::to_string(task_id) + " for " + name +
                       " (it timed out, was answered, or belongs to another run)");
  }
  if (task->round != round) {
    throw SiteConflict("result for round " + std::to_string(round) + ", task " + std::to_string(task_id) + " is round " +
                       std::to_string(task->round));
  }
  const bool expected = result_kind == MessageKind::kTaskFailed ||
                        ((task->kind == MessageKind::kFitTask) == (result_kind == MessageKind::kFitResult) &&
                         (task->kind == MessageKind::kSecAggTask) == (result_kind == MessageKind::kSecAggResult));
  if (!expected) {
    throw SiteConflict(std::string("a ") + message_kind_name(result_kind) + " for a " + message_kind_name(task->kind));
  }
  return task;
}

std::function<void()> SiteRegistry::upload_gate(const std::string& name, const std::string& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end() || it->second.session != session) return {};
  const auto& task = it->second.task;
  if (!task || task->done || task->kind != MessageKind::kFitTask) return {};
  return task->before_upload;
}

void SiteRegistry::deliver(const std::string& name, const SiteTask& task, Result result,
                           std::shared_ptr<Parameters> parameters, std::uint64_t bytes_up,
                           const std::string& rejection, double upload_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sites_.find(name);
  if (task.done || it == sites_.end() || it->second.task.get() != &task) {
    throw SiteConflict("task " + std::to_string(task.id) + " ended meanwhile");
  }
  SiteTask& open = *it->second.task;
  open.outcome.bytes_up = bytes_up;
  open.outcome.upload_seconds = upload_seconds;
  if (!rejection.empty()) {
    open.outcome.failure = "sent an invalid update: " + rejection;
  } else if (result.kind == MessageKind::kTaskFailed) {
    open.outcome.failure = "failed on the client: " + result.error;
  } else {
    if (result.kind != MessageKind::kSecAggResult) result.payload.clear();  // a stage reply is the outcome itself
    open.outcome.result = std::move(result);
    open.outcome.parameters = std::move(parameters);
  }
  open.done = true;
  changed_.notify_all();
}

// --- the round loop -------------------------------------------------------------

std::uint64_t SiteRegistry::next_task_id() {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_task_++;
}

TaskOutcome SiteRegistry::run(const std::string& name, const std::shared_ptr<SiteTask>& task,
                              std::optional<Clock::time_point> deadline, const std::function<bool()>& stop_requested) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end()) return TaskOutcome{"never joined", {}, {}, 0, 0};
  Site& site = it->second;
  task->posted = clock_.now();
  site.task = task;
  changed_.notify_all();
  while (!task->done) {
    const auto now = clock_.now();
    std::string& failure = task->outcome.failure;
    if (stopping_ || (stop_requested && stop_requested())) {
      failure = "the job is stopping";
    } else if (deadline && now >= *deadline) {
      failure = "no result within server.round_timeout (" + whole_seconds(limits_.round_timeout) + " s)";
    } else if (silent(site)) {
      failure = "silent for more than server.client_timeout (" + whole_seconds(limits_.client_timeout) +
                " s): crashed, hung or disconnected";
      set_available(name, site, false, failure);
    }
    if (!failure.empty()) {
      task->done = true;
      break;
    }
    auto until = after(now, limits_.wait_tick_seconds);
    if (deadline) until = std::min(until, *deadline);
    wait(lock, until);
  }
  if (site.task == task) site.task.reset();
  TaskOutcome outcome = std::move(task->outcome);
  outcome.download_seconds = task->download_seconds;
  return outcome;
}

bool SiteRegistry::wait_for_sites(std::size_t need, std::optional<double> give_up_after,
                                  const std::function<bool()>& stop_requested, double progress_every) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto start = clock_.now();
  auto noted = start;
  prune_silent();
  while (available_count() < need) {
    const auto now = clock_.now();
    if (stopping_ || (stop_requested && stop_requested())) return false;
    if (give_up_after && seconds_between(start, now) > *give_up_after) return false;
    if (progress_every > 0 && seconds_between(noted, now) >= progress_every) {
      if (log_) {
        log_("waiting for clients: " + std::to_string(available_count()) + " of " + std::to_string(need) +
             " connected");
      }
      noted = now;
    }
    wait(lock, after(now, std::max(limits_.wait_tick_seconds, 0.25)));
    prune_silent();
  }
  return true;
}

std::size_t SiteRegistry::available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return available_count();
}

void SiteRegistry::finish(double linger) {
  std::unique_lock<std::mutex> lock(mutex_);
  done_ = true;
  changed_.notify_all();
  // Until every available site heard it, at most `linger`.
  const auto until = after(clock_.now(), std::max(0.0, linger));
  auto everyone_told = [&] {
    return std::all_of(sites_.begin(), sites_.end(),
                       [](const auto& entry) { return !entry.second.available || entry.second.told_done; });
  };
  while (linger > 0 && !stopping_ && !everyone_told() && clock_.now() < until) wait(lock, until);
  stopping_ = true;
  changed_.notify_all();
}

void SiteRegistry::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  changed_.notify_all();
}

}  // namespace fedtrack::net
