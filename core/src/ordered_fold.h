// OrderedFold — feeds a round's fit updates to the strategy's UpdateFold
// (update_fold.h) in client-id (plan) order, whatever order they arrive in.
//
// Why a fixed order: floating-point sums are not associative, so folding in
// arrival order would make the global model depend on which client finished
// first; the job must give the same bytes for the same seed, and the same
// bytes as the batch path (Strategy::aggregate_fit folds in the same order).
// An exact, order-free accumulation (a superaccumulator per coordinate)
// would cost several times the model's size in memory, which is what this
// is meant to save.
//
// Memory bound: an update that arrives before its turn is held (decoded)
// until every earlier slot is resolved — folded or failed. In simulation
// the updates are in memory anyway. In the network runtime a RemoteSite
// calls wait_turn() before reading the update's bytes from the socket
// (FitIns::before_upload), so at most one update is read and held at a
// time; the others wait in their TCP connections (the client's memory,
// not the server's). A slot is resolved when its client's call ends:
// result, rejection, failure, the round's deadline or the client's
// silence, so a lost client delays the fold at most until then.
//
// Thread-safe: arrived() / failed() come from the round's worker threads,
// wait_turn() from HTTP threads; the fold runs under the lock, on the
// thread that completed the prefix.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <vector>

#include "fedtrack/core/strategy.h"

namespace fedtrack {

class OrderedFold {
 public:
  OrderedFold(UpdateFold& fold, std::size_t slots) : fold_(fold), slots_(slots) {}

  // Slot `index`'s checked update. Folded now if every earlier slot is
  // resolved, else held; its parameters are released once folded.
  void arrived(std::size_t index, FitResult result);
  // Slot `index` ends without an update.
  void failed(std::size_t index);
  // Returns once every slot before `index` is resolved, or close() was called.
  void wait_turn(std::size_t index);
  // The round is over: waiters return, later calls fold nothing.
  void close();
  // Rethrows what a fold threw, if anything; how many updates were folded.
  std::size_t folded() const;

 private:
  struct Slot {
    bool resolved = false;
    std::optional<FitResult> held;
  };
  void fold_ready_prefix();  // under mutex_

  UpdateFold& fold_;
  mutable std::mutex mutex_;
  std::condition_variable turn_;
  std::vector<Slot> slots_;
  std::size_t next_ = 0;    // the first slot not yet folded or skipped
  std::size_t folded_ = 0;
  bool closed_ = false;
  std::exception_ptr error_;
};

}  // namespace fedtrack
