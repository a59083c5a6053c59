// UpdateFold — a strategy's running aggregate of one round's fit updates,
// so the server can fold each update as it arrives instead of holding all
// K of them (issue 18: server memory independent of K).
//
// A strategy that aggregates by a fold (FedAvg, FedProx and the server
// optimizers FedAvgM, FedAdam, FedYogi, FedAdagrad) returns one from
// Strategy::begin_fit_fold; the server calls add() once per successful
// update, in client-id (plan) order, one call at a time, whatever order the
// updates arrived in (core/src/ordered_fold.h buffers the early ones), then
// Strategy::finish_fit_fold. Strategies that need every update at once
// (Krum, Bulyan, FedMedian, FedTrimmedAvg, QFedAvg, the DP wrappers) return
// nullptr and keep aggregate_fit; see each header for its memory bound.
//
// Ownership: the server owns the fold for the round. add() may keep nothing
// of `result` but what it folds: the update's tensors are released after
// it returns. Not thread-safe; the server serializes the calls.
//
// Other update encodings (secure aggregation, compressed updates) plug in
// here: decode or unmask into a FitResult and add() it; a fold may also be
// built over another representation by a strategy that returns its own
// UpdateFold subclass and reads it back in finish_fit_fold.
#pragma once

namespace fedtrack {

struct FitResult;

class UpdateFold {
 public:
  virtual ~UpdateFold() = default;
  // Folds one update, already checked against the global model's layout,
  // for finite values and num_examples > 0.
  virtual void add(const FitResult& result) = 0;
};

}  // namespace fedtrack
