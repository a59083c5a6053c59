// RecordingQueue — takes a round's recording (its listeners: the model
// committed to the DVC repository, the MLflow run journalled and sent) off
// the round loop's critical path: round N is recorded on one worker thread
// while round N+1 trains.
//
// Bounded to one round in flight: push() waits for the previous record
// first, so records run one at a time, in round order, and the round loop
// never gets more than one round ahead of its records. That keeps the
// resume rules as they were: the resume point of round N+1 is saved only
// after round N was recorded (Server calls wait() before saving), so a
// state file names at most one round whose record may be missing — the one
// a resume replays.
//
// A record that throws: the exception is kept and rethrown by the next
// wait() or rethrow_if_failed() on the round loop's thread, so a failure to
// record still stops the job (one round of training later than when the
// record ran inline). Nothing after a failed record runs.
//
// The worker runs at nice 10 (Linux, best effort): below the round loop's
// training threads, which keep the cores; when the loop waits for a record,
// the record has the core to itself.
//
// Ownership and threading: one owner thread calls push / wait /
// rethrow_if_failed; the task runs on the worker. The destructor waits for
// the record in flight (dropping its error) and joins the worker.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace fedtrack {

class RecordingQueue {
 public:
  using Record = std::function<void()>;

  // `hold`: a test seam — a pushed record starts only when wait() is
  // called (in the round loop: once the next round has trained, or the job
  // ends), so the "round N+1 trained, round N still recording" window is
  // there on every round, deterministically.
  explicit RecordingQueue(bool hold = false);
  ~RecordingQueue();
  RecordingQueue(const RecordingQueue&) = delete;
  RecordingQueue& operator=(const RecordingQueue&) = delete;

  // Waits for the previous record (rethrowing its failure), then hands
  // `record` to the worker and returns.
  void push(Record record);
  // Waits until no record is in flight; rethrows a failure (once).
  void wait();
  // Rethrows a failure of a record that already finished, without waiting.
  void rethrow_if_failed();

 private:
  void work();

  const bool hold_;
  std::mutex mutex_;
  std::condition_variable changed_;
  Record pending_;             // set: a record waits for or runs on the worker
  bool released_ = false;      // hold: wait() let the pending record start
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread worker_;
};

}  // namespace fedtrack
