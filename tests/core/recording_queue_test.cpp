// Recording off the critical path (recording_queue.h, server.h): round N's
// listeners run while round N+1 trains, one round at a time, in order; a
// round's resume point is saved only after the previous round was recorded;
// a failed record stops the job; on_job_end comes after the last record;
// the model bytes do not depend on how slowly the listeners record.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/server.h"
#include "recording_queue.h"

namespace fedtrack {
namespace {

using namespace std::chrono_literals;

// What happened, from every thread, in order.
struct Log {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> events;
  void add(const std::string& e) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      events.push_back(e);
    }
    changed.notify_all();
  }
  // Waits (at most a minute: a missing overlap shows as a failure, not a hang) for `e`.
  bool wait_for(const std::string& e) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, 60s, [&] { return std::find(events.begin(), events.end(), e) != events.end(); });
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return events;
  }
};

Parameters vector_params(std::vector<float> w) {
  Parameters p;
  p.names = {"w"};
  p.tensors = {torch::tensor(w)};
  p.buffer_begin = 1;
  return p;
}

// Adds a per-client step to the model; logs "fit <round>".
class StepClient : public ClientProxy {
 public:
  StepClient(std::string id, float step, Log* log) : ClientProxy(std::move(id)), step_(step), log_(log) {}
  FitRes fit(const FitIns& ins, TransferStats&) override {
    const auto round = std::get<std::int64_t>(ins.config.at("round"));
    if (log_) log_->add("fit " + std::to_string(round) + " " + id());
    FitRes res;
    res.num_examples = 1;
    res.parameters = clone(*ins.parameters);
    res.parameters.tensors[0].mul_(0.5).add_(step_ * static_cast<float>(round));
    return res;
  }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override { return {0.0, 1, {}}; }

 private:
  float step_;
  Log* log_;
};

FedAvgOptions fedavg() {
  FedAvgOptions o;
  o.initial_parameters = vector_params({1, 2, 3});
  o.on_fit_config = [](int round) { return ConfigRecord{{"round", std::int64_t{round}}}; };
  return o;
}

// Logs every call; `gate` (when set) runs inside on_round before it returns.
class LoggingListener : public RoundListener {
 public:
  explicit LoggingListener(Log& log) : log_(log) {}
  void on_job_start(const JobStart&) override { log_.add("start"); }
  void on_round(const RoundSummary& s) override {
    if (gate) gate(s.round);
    models.push_back(s.model->checkpoint_bytes());
    log_.add("record " + std::to_string(s.round));
  }
  void on_job_end(const JobEnd& e) override {
    log_.add(std::string("end ") + job_status_name(e.status) + " " + std::to_string(e.rounds_completed));
  }
  std::function<void(int)> gate;
  std::vector<std::string> models;  // each round's checkpoint, as recorded

 private:
  Log& log_;
};

struct Job {
  ClientManager clients{7};
  FedAvg strategy{fedavg()};
  ServerOptions options;
  Job(Log* log, int rounds) {
    clients.add(std::make_shared<StepClient>("a", 1.0f, log));
    clients.add(std::make_shared<StepClient>("b", 3.0f, log));
    options.job_id = "job";
    options.num_rounds = rounds;
    options.evaluate_initial = false;
    if (log) {
      options.on_round_complete = [log](const ResumePoint& p) { log->add("save " + std::to_string(p.completed_round)); };
      options.on_round_recorded = [log](int round) { log->add("recorded " + std::to_string(round)); };
    }
  }
};

// Round 1's record waits until round 2 has trained: it can only finish if
// the round loop went on without it. Round 2's resume point is still saved
// after round 1 was recorded, and the rounds' models are the ones a job
// without any listener computes.
TEST(RecordingQueue, RoundNIsRecordedWhileRoundNPlus1Trains) {
  Log log;
  Job job(&log, 3);
  LoggingListener listener(log);
  bool overlapped = false;
  listener.gate = [&](int round) {
    if (round == 1) overlapped = log.wait_for("fit 2 b");
  };
  Server server(job.clients, job.strategy, job.options);
  server.add_listener(&listener);
  const ServerResult result = server.run();
  EXPECT_TRUE(overlapped) << "round 2 did not train while round 1 was being recorded";

  const auto events = log.snapshot();
  const auto at = [&](const std::string& e) {
    return std::find(events.begin(), events.end(), e) - events.begin();
  };
  for (int r = 1; r <= 3; ++r) {
    const std::string n = std::to_string(r);
    EXPECT_LT(at("save " + n), at("record " + n)) << "round " << n;
    EXPECT_LT(at("record " + n), at("recorded " + n)) << "round " << n;
    if (r > 1) {
      EXPECT_LT(at("recorded " + std::to_string(r - 1)), at("save " + n)) << "round " << n;
      EXPECT_LT(at("record " + std::to_string(r - 1)), at("record " + n)) << "round " << n;
    }
  }
  EXPECT_EQ(events.back(), "end FINISHED 3");
  EXPECT_EQ(at("end FINISHED 3"), at("recorded 3") + 1);

  // The same rounds without recording: the same bytes every round.
  Job plain(nullptr, 3);
  Server reference(plain.clients, plain.strategy, plain.options);
  std::vector<std::string> models;
  struct Collect : RoundListener {
    std::vector<std::string>* out;
    void on_round(const RoundSummary& s) override { out->push_back(s.model->checkpoint_bytes()); }
  } collect;
  collect.out = &models;
  reference.add_listener(&collect);
  const ServerResult again = reference.run();
  EXPECT_EQ(listener.models, models);
  EXPECT_TRUE(torch::equal(result.parameters.tensors[0], again.parameters.tensors[0]));
  EXPECT_EQ(checkpoint_bytes(result.parameters), models.back());
}

// A record that fails stops the job with its error before the next round's
// resume point is saved or another round is recorded; on_job_end hears it.
TEST(RecordingQueue, AFailedRecordStopsTheJobBeforeTheNextResumePoint) {
  Log log;
  Job job(&log, 5);
  LoggingListener listener(log);
  listener.gate = [](int round) {
    if (round == 2) throw Error::unavailable("the model repository is gone");
  };
  Server server(job.clients, job.strategy, job.options);
  server.add_listener(&listener);
  try {
    server.run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_STREQ(e.what(), "the model repository is gone");
  }
  const auto events = log.snapshot();
  const auto has = [&](const std::string& e) { return std::find(events.begin(), events.end(), e) != events.end(); };
  EXPECT_TRUE(has("recorded 1"));
  EXPECT_TRUE(has("save 2"));
  EXPECT_FALSE(has("recorded 2"));
  EXPECT_FALSE(has("save 3"));
  EXPECT_FALSE(has("record 3"));
  EXPECT_FALSE(has("fit 4 a"));
  EXPECT_EQ(events.back(), "end FAILED 2");  // round 2 was the last one handed to the listeners
}

// A stop request while a round records: the record finishes first, then
// on_job_end (KILLED) — never the other way round.
TEST(RecordingQueue, AStoppedJobEndsAfterTheRecordInFlight) {
  Log log;
  Job job(&log, 5);
  // The stop comes once round 1 is saved and its record has started; the
  // record goes on until the round loop has seen the stop.
  job.options.stop_requested = [&] {
    const auto events = log.snapshot();
    if (std::find(events.begin(), events.end(), "save 1") == events.end()) return false;
    log.wait_for("recording 1");
    log.add("stop seen");
    return true;
  };
  LoggingListener listener(log);
  listener.gate = [&](int round) {
    if (round != 1) return;
    log.add("recording 1");
    log.wait_for("stop seen");
  };
  Server server(job.clients, job.strategy, job.options);
  server.add_listener(&listener);
  EXPECT_THROW(server.run(), Error);
  const auto events = log.snapshot();
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[events.size() - 3], "record 1");
  EXPECT_EQ(events[events.size() - 2], "recorded 1");
  EXPECT_EQ(events.back(), "end KILLED 1");
}

// The test seam: a held record starts only when the owner waits for it.
TEST(RecordingQueue, AHeldRecordStartsOnlyWhenWaitedFor) {
  RecordingQueue queue(/*hold=*/true);
  std::atomic<int> ran{0};
  queue.push([&] { ran = 1; });
  std::this_thread::sleep_for(50ms);  // (it would have run by now if it were not held)
  EXPECT_EQ(ran.load(), 0);
  queue.wait();
  EXPECT_EQ(ran.load(), 1);
  queue.push([&] { throw Error::internal("boom"); });
  EXPECT_NO_THROW(queue.rethrow_if_failed());  // held: has not run
  EXPECT_THROW(queue.wait(), Error);
  EXPECT_NO_THROW(queue.wait());  // reported once
}

}  // namespace
}  // namespace fedtrack
