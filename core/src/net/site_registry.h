// The server's book of connected sites, shared by the HTTP threads and the
// round loop. It owns its lock: every read and change goes through a method.
//
// A site joins with its token's name (one process per token: another
// process's join is refused while the session is live), long-polls for its
// task, and delivers a result; the round loop posts a task to a site and
// waits for the result, the round's deadline or the site's silence (no
// request for client_timeout and none open). A site counts as available to
// sampling from its join until it falls silent; `on_available(name, bool)`
// reports each change (under the registry's lock: it must not call back).
//
// Time comes from a Clock, so a test drives timeouts with a fake clock
// instead of sleeping. Torch-free: a task's model travels as bytes and the
// decoded global / update as opaque pointers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "net/protocol.h"

namespace fedtrack {
struct Parameters;
}

namespace fedtrack::net {

// What the registry knows of time: now, and a wait on its condition
// variable that ends at `until` or a notification, whichever is first.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
  virtual void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point until) = 0;
};

// std::chrono::steady_clock.
Clock& steady_clock();

double seconds_between(Clock::time_point from, Clock::time_point to);

// A request the registry refuses because of the site's state: the server
// answers 409 with the message. `logged` false: the registry logged it
// (rate-limited) itself.
class SiteConflict : public std::runtime_error {
 public:
  explicit SiteConflict(const std::string& why, bool logged = true) : std::runtime_error(why), logged(logged) {}
  bool logged;
};

// How a task ended, for the round loop.
struct TaskOutcome {
  std::string failure;                      // empty: `result` holds the answer
  std::optional<Result> result;             // without its payload (but a kSecAggResult's stage reply)
  std::shared_ptr<Parameters> parameters;   // a fit result's model, checked
  std::uint64_t bytes_up = 0;
  double download_seconds = 0;
  double upload_seconds = 0;  // reading the result's body
};

// One task handed to one site. The fields above the line are set when it is
// posted and never change; the rest only the registry touches.
struct SiteTask {
  std::uint64_t id = 0;
  MessageKind kind = MessageKind::kFitTask;
  int round = 0;
  std::string head;                               // encode_task_head
  std::shared_ptr<const std::string> payload;     // the model, FTPM (kSecAggTask: the stage request)
  std::shared_ptr<const Parameters> global;       // the same model, decoded (to check an update against)
  std::function<void()> before_upload;            // a fit result waits on it before its bytes are read (may be empty)
  std::int64_t secagg_stage = 0;                  // kSecAggTask: the stage it asks for
  // ---
  bool delivered = false;
  std::string delivered_session;
  bool done = false;
  Clock::time_point posted{};
  double download_seconds = 0;  // posted -> last byte written to the site
  TaskOutcome outcome;
};

struct RegistryLimits {
  double client_timeout = 60;                // silence after which a site is gone
  double round_timeout = 600;                // named in a timed-out task's failure
  double poll_seconds = 5;                   // a long poll's length
  double shared_token_warning_seconds = 60;  // at most one "token used twice" warning per site
  double wait_tick_seconds = 0.2;            // how often waits look at stop_requested
};

class SiteRegistry {
 public:
  using Log = std::function<void(const std::string&)>;
  using Availability = std::function<void(const std::string& name, bool available)>;

  SiteRegistry(RegistryLimits limits, Clock& clock, Log log, Availability on_available);
  SiteRegistry(const SiteRegistry&) = delete;
  SiteRegistry& operator=(const SiteRegistry&) = delete;

  // --- the HTTP side ---
  struct Joining {
    std::string session;
    bool again = false;     // the site had a session before
    std::size_t connected;  // available sites after this join
  };
  // `instance` names the client process; `address` is where it connects from.
  // SiteConflict when another process holds a live session for `name`.
  Joining join(const std::string& name, const std::string& instance, const std::string& address,
               const std::string& endpoint);
  // A heartbeat: SiteConflict unless `session` is the site's current one.
  void heartbeat(const std::string& name, const std::string& session);
  // A long poll: a task for this session, done (the job finished), or
  // neither after poll_seconds (wait). SiteConflict for a stale session.
  struct PollAnswer {
    std::shared_ptr<SiteTask> task;
    bool done = false;
  };
  PollAnswer poll(const std::string& name, const std::string& session);
  void task_sent(SiteTask& task);  // its model's last byte was written
  void told_done(const std::string& name);
  // While a request of a known site is being served it is not silent.
  // request_started is false for a name that never joined (nothing to end).
  bool request_started(const std::string& name);
  void request_ended(const std::string& name);
  // The open task a result answers. SiteConflict when there is none with
  // this id, or it is for another round or of another kind.
  std::shared_ptr<SiteTask> open_task(const std::string& name, const std::string& session, std::int64_t task_id,
                                      std::int64_t round, MessageKind result_kind);
  // The wait a result of this site's open task makes before its body is
  // read (SiteTask::before_upload): empty when there is none, or no open
  // task for this session (open_task then refuses the result).
  std::function<void()> upload_gate(const std::string& name, const std::string& session);
  // Ends the task with the result, or with `rejection` as its failure.
  // SiteConflict if the task ended meanwhile.
  void deliver(const std::string& name, const SiteTask& task, Result result, std::shared_ptr<Parameters> parameters,
               std::uint64_t bytes_up, const std::string& rejection, double upload_seconds = 0);

  // --- the round loop ---
  std::uint64_t next_task_id();
  // Hands `task` to the site and waits for its end: a result, the deadline,
  // the site's silence (which also makes it unavailable), stop() /
  // `stop_requested`, or the site joining again after taking it.
  TaskOutcome run(const std::string& name, const std::shared_ptr<SiteTask>& task,
                  std::optional<Clock::time_point> deadline, const std::function<bool()>& stop_requested);
  // Waits until `need` sites are available; false when `give_up_after`
  // seconds pass first or `stop_requested` says so. Logs progress every
  // `progress_every` seconds (0: never).
  bool wait_for_sites(std::size_t need, std::optional<double> give_up_after,
                      const std::function<bool()>& stop_requested, double progress_every);
  std::size_t available() const;
  // The job finished: polls answer done; waits up to `linger` seconds for
  // every available site to hear it, then stops.
  void finish(double linger);
  // The job ended otherwise: every wait returns.
  void stop();

 private:
  struct Site {
    std::string session;
    Clock::time_point last_seen{};
    int open_requests = 0;
    bool told_done = false;
    bool available = false;
    std::shared_ptr<SiteTask> task;
    std::string instance;
    std::string address;
    std::uint64_t refused_joins = 0;
    std::optional<Clock::time_point> warned;
  };

  Site& session_site(const std::string& name, const std::string& session);  // under mutex_
  bool silent(const Site& site) const;                                       // under mutex_
  void set_available(const std::string& name, Site& site, bool available, const std::string& why);
  void prune_silent();
  std::size_t available_count() const;
  void wait(std::unique_lock<std::mutex>& lock, Clock::time_point until);

  const RegistryLimits limits_;
  Clock& clock_;
  const Log log_;
  const Availability on_available_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Site> sites_;
  bool done_ = false;
  bool stopping_ = false;
  std::uint64_t next_task_ = 1;
};

// RAII request_started / request_ended.
class SitePresence {
 public:
  SitePresence(SiteRegistry& registry, std::string name)
      : registry_(registry), name_(std::move(name)), started_(registry_.request_started(name_)) {}
  ~SitePresence() {
    if (started_) registry_.request_ended(name_);
  }
  SitePresence(const SitePresence&) = delete;
  SitePresence& operator=(const SitePresence&) = delete;

 private:
  SiteRegistry& registry_;
  std::string name_;
  bool started_;
};

}  // namespace fedtrack::net
