// The server's site registry (core/src/net/site_registry.h) driven by a fake
// clock: joins, task hand-out and results, deadlines and silence, waiting
// for sites, finishing. Time moves only when a test advances it; nothing
// sleeps.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/fake_clock.h"
#include "net/site_registry.h"

namespace fedtrack::net {
namespace {

using fedtrack::testing::FakeClock;

struct Fixture {
  explicit Fixture(RegistryLimits limits = defaults())
      : registry(limits, clock, [this](const std::string& line) { record(line); },
                 [this](const std::string& name, bool available) {
                   std::lock_guard<std::mutex> lock(mutex);
                   availability[name] = available;
                 }) {}

  static RegistryLimits defaults() {
    RegistryLimits limits;
    limits.client_timeout = 10;
    limits.round_timeout = 30;
    limits.poll_seconds = 5;
    limits.shared_token_warning_seconds = 60;
    return limits;
  }
  void record(const std::string& line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.push_back(line);
  }
  std::size_t lines_containing(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(text) != std::string::npos;
    return n;
  }
  bool available(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex);
    return availability.count(name) && availability[name];
  }
  // A fit task for `name`, run by the "round loop" on its own thread.
  std::future<TaskOutcome> post(const std::string& name, int round, std::optional<double> deadline_in = {}) {
    auto task = std::make_shared<SiteTask>();
    task->id = registry.next_task_id();
    task->kind = MessageKind::kFitTask;
    task->round = round;
    task->head = "head of " + std::to_string(task->id);
    task->payload = std::make_shared<const std::string>("model");
    std::optional<Clock::time_point> deadline;
    if (deadline_in) {
      deadline = clock.now() + std::chrono::duration_cast<Clock::time_point::duration>(
                                   std::chrono::duration<double>(*deadline_in));
    }
    return std::async(std::launch::async, [this, name, task, deadline] {
      return registry.run(name, task, deadline, stop_flag);
    });
  }

  // bank-a joined and polled: it holds a fit task of `round` that the round loop waits on.
  struct HandedOut {
    std::string session;
    std::future<TaskOutcome> outcome;
    std::shared_ptr<SiteTask> task;
  };
  HandedOut hand_out(int round, std::optional<double> deadline_in = {}) {
    HandedOut h;
    h.session = registry.join("bank-a", "p", "h", "h:1").session;
    h.outcome = post("bank-a", round, deadline_in);
    h.task = registry.poll("bank-a", h.session).task;  // returns when the task is posted
    return h;
  }

  FakeClock clock;
  std::mutex mutex;
  std::vector<std::string> lines;
  std::map<std::string, bool> availability;
  std::function<bool()> stop_flag;
  SiteRegistry registry;
};

Result fit_result(const SiteTask& task, std::int64_t num_examples) {
  Result r;
  r.kind = MessageKind::kFitResult;
  r.task_id = static_cast<std::int64_t>(task.id);
  r.round = task.round;
  r.num_examples = num_examples;
  return r;
}

// The value of a future the registry should have completed. A broken
// registry would leave it waiting forever: after a generous bound the test
// fails and stops the registry, so every wait returns.
template <typename T>
T settled(std::future<T>& future, SiteRegistry& registry) {
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "still waiting: the registry missed a wake-up or a timeout";
    registry.stop();
  }
  return future.get();
}

TEST(SiteRegistry, JoinMakesASiteAvailableWithAFreshSession) {
  Fixture f;
  const auto first = f.registry.join("bank-a", "proc-1", "10.0.0.1", "10.0.0.1:5000");
  EXPECT_FALSE(first.again);
  EXPECT_EQ(first.connected, 1u);
  EXPECT_EQ(first.session.size(), 32u);
  EXPECT_TRUE(f.available("bank-a"));
  EXPECT_EQ(f.registry.available(), 1u);
  EXPECT_EQ(f.lines_containing("client bank-a joined from 10.0.0.1:5000 (1 connected)"), 1u);

  // The same process joining again gets a new session; the old one is gone.
  const auto second = f.registry.join("bank-a", "proc-1", "10.0.0.1", "10.0.0.1:5001");
  EXPECT_TRUE(second.again);
  EXPECT_NE(second.session, first.session);
  EXPECT_THROW(f.registry.heartbeat("bank-a", first.session), SiteConflict);
  EXPECT_NO_THROW(f.registry.heartbeat("bank-a", second.session));
  EXPECT_THROW(f.registry.heartbeat("bank-b", second.session), SiteConflict);
}

TEST(SiteRegistry, ASecondProcessWithTheTokenIsRefusedUntilTheSessionFallsSilent) {
  Fixture f;
  const auto live = f.registry.join("bank-a", "proc-1", "10.0.0.1", "10.0.0.1:5000");
  try {
    f.registry.join("bank-a", "proc-2", "10.0.0.2", "10.0.0.2:6000");
    ADD_FAILURE() << "a second process took the session";
  } catch (const SiteConflict& c) {
    EXPECT_FALSE(c.logged);  // the registry's own, rate-limited warning says it
    EXPECT_NE(std::string(c.what()).find("already in use by a live session from 10.0.0.1"), std::string::npos);
  }
  EXPECT_THROW(f.registry.join("bank-a", "proc-2", "10.0.0.2", "10.0.0.2:6001"), SiteConflict);
  EXPECT_EQ(f.lines_containing("is used by more than one process"), 1u);  // one warning for both
  EXPECT_NO_THROW(f.registry.heartbeat("bank-a", live.session));          // the live session is untouched

  f.clock.advance(61);  // silent past client_timeout, and the warning interval passed
  const auto taken = f.registry.join("bank-a", "proc-2", "10.0.0.2", "10.0.0.2:6002");
  EXPECT_TRUE(taken.again);
  EXPECT_THROW(f.registry.heartbeat("bank-a", live.session), SiteConflict);
}

TEST(SiteRegistry, ATaskIsHandedOutAndItsResultEndsTheWait) {
  Fixture f;
  const auto site = f.registry.join("bank-a", "proc-1", "h", "h:1");
  auto outcome = f.post("bank-a", 4);
  const auto answer = f.registry.poll("bank-a", site.session);  // returns when the task is posted
  ASSERT_TRUE(answer.task);
  EXPECT_FALSE(answer.done);
  EXPECT_EQ(answer.task->round, 4);
  // The same session asking again (it lost the reply) gets the same task.
  EXPECT_EQ(f.registry.poll("bank-a", site.session).task, answer.task);

  const auto id = static_cast<std::int64_t>(answer.task->id);
  EXPECT_THROW(f.registry.open_task("bank-a", site.session, id + 1, 4, MessageKind::kFitResult), SiteConflict);
  EXPECT_THROW(f.registry.open_task("bank-a", site.session, id, 5, MessageKind::kFitResult), SiteConflict);
  EXPECT_THROW(f.registry.open_task("bank-a", site.session, id, 4, MessageKind::kEvaluateResult), SiteConflict);
  EXPECT_THROW(f.registry.open_task("bank-a", "stale", id, 4, MessageKind::kFitResult), SiteConflict);
  const auto task = f.registry.open_task("bank-a", site.session, id, 4, MessageKind::kFitResult);
  f.clock.advance(2);
  f.registry.task_sent(*task);
  f.registry.deliver("bank-a", *task, fit_result(*task, 600), nullptr, 1234, "");
  const TaskOutcome done = settled(outcome, f.registry);
  EXPECT_EQ(done.failure, "");
  ASSERT_TRUE(done.result);
  EXPECT_EQ(done.result->num_examples, 600);
  EXPECT_EQ(done.bytes_up, 1234u);
  EXPECT_DOUBLE_EQ(done.download_seconds, 2.0);
  // Answered: a second result for it is refused.
  EXPECT_THROW(f.registry.open_task("bank-a", site.session, id, 4, MessageKind::kFitResult), SiteConflict);
  EXPECT_THROW(f.registry.deliver("bank-a", *task, fit_result(*task, 1), nullptr, 1, ""), SiteConflict);
}

TEST(SiteRegistry, ARejectedOrFailedResultIsTheTasksFailure) {
  Fixture f;
  const auto site = f.registry.join("bank-a", "p", "h", "h:1");
  auto rejected = f.post("bank-a", 1);
  auto task = f.registry.poll("bank-a", site.session).task;
  ASSERT_TRUE(task);
  f.registry.deliver("bank-a", *task, fit_result(*task, 5), nullptr, 10, "update has 3 tensors, expected 4");
  EXPECT_EQ(settled(rejected, f.registry).failure, "sent an invalid update: update has 3 tensors, expected 4");

  auto failed = f.post("bank-a", 2);
  task = f.registry.poll("bank-a", site.session).task;
  ASSERT_TRUE(task);
  Result r = fit_result(*task, 0);
  r.kind = MessageKind::kTaskFailed;
  r.error = "out of memory";
  f.registry.deliver("bank-a", *task, r, nullptr, 10, "");
  const TaskOutcome outcome = settled(failed, f.registry);
  EXPECT_EQ(outcome.failure, "failed on the client: out of memory");
  EXPECT_FALSE(outcome.result);
}

TEST(SiteRegistry, ATaskPastItsDeadlineTimesOut) {
  Fixture f;
  auto [session, outcome, task] = f.hand_out(1, 30.0);
  ASSERT_TRUE(task);
  f.clock.advance(8);
  f.registry.heartbeat("bank-a", session);  // not silent: only the deadline ends it
  f.clock.advance(8);
  f.registry.heartbeat("bank-a", session);
  f.clock.advance(8);
  f.registry.heartbeat("bank-a", session);
  // 24 s in: still open.
  EXPECT_NO_THROW(f.registry.open_task("bank-a", session, static_cast<std::int64_t>(task->id), 1,
                                       MessageKind::kFitResult));
  f.clock.advance(7);
  EXPECT_EQ(settled(outcome, f.registry).failure, "no result within server.round_timeout (30 s)");
  EXPECT_TRUE(f.available("bank-a"));  // a slow site stays in sampling
  EXPECT_THROW(f.registry.open_task("bank-a", session, static_cast<std::int64_t>(task->id), 1,
                                    MessageKind::kFitResult),
               SiteConflict);
}

TEST(SiteRegistry, ASilentSiteFailsItsTaskAndLeavesSampling) {
  Fixture f;
  auto [session, outcome, task] = f.hand_out(1);
  ASSERT_TRUE(task);
  f.clock.advance(11);  // over client_timeout without a request
  EXPECT_EQ(settled(outcome, f.registry).failure,
            "silent for more than server.client_timeout (10 s): crashed, hung or disconnected");
  EXPECT_FALSE(f.available("bank-a"));
  EXPECT_EQ(f.registry.available(), 0u);
  EXPECT_EQ(f.lines_containing("client bank-a left: silent for more than"), 1u);
}

TEST(SiteRegistry, AnOpenRequestIsNotSilence) {
  Fixture f;
  auto [session, outcome, task] = f.hand_out(1, 100.0);
  ASSERT_TRUE(task);
  {
    SitePresence uploading(f.registry, "bank-a");  // a long upload of the result
    f.clock.advance(50);
    EXPECT_NO_THROW(f.registry.open_task("bank-a", session, static_cast<std::int64_t>(task->id), 1,
                                         MessageKind::kFitResult));
  }
  f.registry.deliver("bank-a", *task, fit_result(*task, 3), nullptr, 1, "");
  EXPECT_EQ(settled(outcome, f.registry).failure, "");
  EXPECT_TRUE(f.available("bank-a"));
}

TEST(SiteRegistry, JoiningAgainLosesATaskAlreadyTaken) {
  Fixture f;
  auto [session, outcome, task] = f.hand_out(1);
  ASSERT_TRUE(task);
  f.registry.join("bank-a", "p", "h", "h:2");
  EXPECT_EQ(settled(outcome, f.registry).failure, "the client joined again and lost its task");
}

TEST(SiteRegistry, StopEndsEveryWait) {
  Fixture f;
  f.registry.join("bank-a", "p", "h", "h:1");
  auto outcome = f.post("bank-a", 1);
  auto waiting = std::async(std::launch::async, [&] { return f.registry.wait_for_sites(2, std::nullopt, {}, 0); });
  f.registry.stop();
  EXPECT_EQ(settled(outcome, f.registry).failure, "the job is stopping");
  EXPECT_FALSE(settled(waiting, f.registry));
}

TEST(SiteRegistry, WaitForSitesReturnsWhenEnoughJoinOrGivesUp) {
  Fixture f;
  auto enough = std::async(std::launch::async, [&] { return f.registry.wait_for_sites(2, std::nullopt, {}, 0); });
  f.registry.join("bank-a", "p", "h", "h:1");
  f.registry.join("bank-b", "p", "h", "h:2");
  EXPECT_TRUE(settled(enough, f.registry));

  Fixture g;
  g.registry.join("bank-a", "p", "h", "h:1");
  auto gives_up = std::async(std::launch::async, [&] { return g.registry.wait_for_sites(2, 5.0, {}, 0); });
  g.clock.await_waits(1);  // it has started waiting
  g.clock.advance(4);
  g.clock.advance(2);
  EXPECT_FALSE(settled(gives_up, g.registry));

  // The silent do not count: wait_for_sites takes them out first.
  Fixture h;
  h.registry.join("bank-a", "p", "h", "h:1");
  h.clock.advance(11);
  EXPECT_TRUE(h.available("bank-a"));
  EXPECT_TRUE(h.registry.wait_for_sites(0, std::nullopt, {}, 0));
  EXPECT_FALSE(h.available("bank-a"));
  EXPECT_EQ(h.registry.available(), 0u);
}

TEST(SiteRegistry, WaitForSitesLogsProgressAndHonoursStop) {
  Fixture f;
  std::atomic<bool> stop{false};
  auto waiting = std::async(std::launch::async, [&] {
    return f.registry.wait_for_sites(3, std::nullopt, [&] { return stop.load(); }, 10);
  });
  f.clock.await_waits(1);
  f.clock.advance(11);     // past the progress interval: it logs, then waits again
  f.clock.await_waits(2);
  EXPECT_EQ(f.lines_containing("waiting for clients: 0 of 3 connected"), 1u);
  stop = true;
  f.clock.advance(1);      // wakes it: it reads stop_requested
  EXPECT_FALSE(settled(waiting, f.registry));
}

TEST(SiteRegistry, FinishTellsPollersAndWaitsForThemAtMostLinger) {
  Fixture f;
  const auto a = f.registry.join("bank-a", "p", "h", "h:1");
  auto finishing = std::async(std::launch::async, [&] { f.registry.finish(30); });
  const auto answer = f.registry.poll("bank-a", a.session);  // returns at once once finishing
  EXPECT_TRUE(answer.done);
  EXPECT_FALSE(answer.task);
  f.registry.told_done("bank-a");
  settled(finishing, f.registry);  // every available site heard it: no need to linger

  Fixture g;
  g.registry.join("bank-a", "p", "h", "h:1");
  auto lingering = std::async(std::launch::async, [&] { g.registry.finish(30); });
  g.clock.await_waits(1);
  g.clock.advance(31);  // bank-a never polls again: finish gives up after linger
  settled(lingering, g.registry);
}

}  // namespace
}  // namespace fedtrack::net
