// Strategy — how the server turns client updates into the next global model,
// in Flower's shape: initialize, configure_fit, aggregate_fit,
// configure_evaluate, aggregate_evaluate, evaluate.
//
// Results and failures are handed over explicitly: a failure is a sampled
// client whose fit raised, timed out, or sent an update the server rejected
// (wrong layout, NaN/Inf). A strategy decides what a round with failures
// means (FedAvg: accept_failures). The server calls a strategy from one
// thread at a time; strategies need no locking of their own.
//
// One strategy per file (fedavg.h, ...); the shared math lives in aggregate.h;
// cross-cutting features wrap another Strategy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/state_record.h"
#include "fedtrack/core/update_fold.h"

namespace fedtrack {

class ClientProxy;
class ClientManager;

// When a client's answer is no longer awaited (the round timeout); unset =
// no limit. Set by the server, honoured by proxies that can wait.
using Deadline = std::optional<std::chrono::steady_clock::time_point>;

struct FitIns {
  std::shared_ptr<const Parameters> parameters;  // the global model, shared read-only
  ConfigRecord config;
  Deadline deadline{};
  // Set by the server when the round folds updates as they arrive: a proxy
  // that receives the update as bytes (network) calls it before reading
  // them, so updates are read in the order they are folded and at most one
  // waits decoded in memory. It returns once every earlier client's update
  // was folded or failed (or the round ended).
  std::function<void()> before_upload{};
};

struct FitRes {
  Parameters parameters;
  std::int64_t num_examples = 0;
  Metrics metrics;                // e.g. train_loss, train_accuracy
  std::string data_fingerprint;   // hash over the examples trained on (never the data)
};

struct EvaluateIns {
  std::shared_ptr<const Parameters> parameters;
  ConfigRecord config;
  Deadline deadline{};
};

struct EvaluateRes {
  double loss = 0;
  std::int64_t num_examples = 0;
  Metrics metrics;  // e.g. accuracy
};

// Bytes moved and time spent for one client call, as counted by the proxy
// (in simulation: the size the wire encoding would have).
struct TransferStats {
  std::uint64_t bytes_down = 0;
  std::uint64_t bytes_up = 0;
  double seconds = 0;        // the whole call, as the server saw it
  double train_seconds = 0;  // the client's own time in fit/evaluate, as it measured
  double download_seconds = 0;  // network: from the task's posting until the model was sent to the client
  // With compression on: what the same transfer would have weighed
  // uncompressed (0 = not compressed; the server reports the ratio).
  std::uint64_t raw_bytes_down = 0;
  std::uint64_t raw_bytes_up = 0;
  double upload_seconds = 0;    // network: reading the result's body, from its turn to its last byte
};

struct FitInstruction {
  std::shared_ptr<ClientProxy> client;
  FitIns ins;
};

struct EvaluateInstruction {
  std::shared_ptr<ClientProxy> client;
  EvaluateIns ins;
};

struct FitResult {
  std::string client_id;
  FitRes res;
  TransferStats transfer;
};

struct EvaluateResult {
  std::string client_id;
  EvaluateRes res;
  TransferStats transfer;
};

struct ClientFailure {
  std::string client_id;
  std::string reason;
  TransferStats transfer;
  // Why, when the client said so (kFailedPrecondition: its training
  // diverged); a lost or silent client is kUnavailable.
  ErrorCode code = ErrorCode::kUnavailable;
};

struct AggregateFitOutcome {
  std::optional<Parameters> parameters;  // empty: keep the current global model
  Metrics metrics;                       // aggregated client fit metrics
};

struct AggregateEvaluateOutcome {
  std::optional<double> loss;
  Metrics metrics;
};

// Centralized evaluation of a global model on data the server holds.
struct CentralEvaluation {
  double loss = 0;
  Metrics metrics;  // e.g. accuracy
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  virtual std::string name() const = 0;

  // The initial global model; empty means "ask a client" (runtimes that
  // cannot do that report Error(kFailedPrecondition)).
  virtual std::optional<Parameters> initialize_parameters(ClientManager& clients) = 0;

  virtual std::vector<FitInstruction> configure_fit(int round,
                                                    std::shared_ptr<const Parameters> global,
                                                    ClientManager& clients) = 0;

  // `results` are in client-id order, each already checked against the global
  // model's layout and for finite values.
  virtual AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                            const std::vector<ClientFailure>& failures) = 0;

  virtual std::vector<EvaluateInstruction> configure_evaluate(
      int round, std::shared_ptr<const Parameters> global, ClientManager& clients) = 0;

  virtual AggregateEvaluateOutcome aggregate_evaluate(
      int round, const std::vector<EvaluateResult>& results,
      const std::vector<ClientFailure>& failures) = 0;

  // Streaming aggregation (update_fold.h). A fold for this round's updates,
  // or nullptr (the default): the server then collects every result and
  // calls aggregate_fit. With a fold, the server add()s each update in
  // client-id order and calls finish_fit_fold instead of aggregate_fit;
  // `results` there carry everything but the parameters (already folded).
  // Both paths must give the same bytes for the same updates.
  virtual std::unique_ptr<UpdateFold> begin_fit_fold(int round, const Parameters& global) {
    (void)round;
    (void)global;
    return nullptr;
  }
  virtual AggregateFitOutcome finish_fit_fold(int round, UpdateFold& fold, const std::vector<FitResult>& results,
                                              const std::vector<ClientFailure>& failures) {
    (void)round, (void)fold, (void)results, (void)failures;
    throw Error::failed_precondition("strategy '" + name() + "' does not fold updates");
  }

  // Centralized evaluation; empty when the strategy has no evaluation data.
  virtual std::optional<CentralEvaluation> evaluate(int round, const Parameters& global) = 0;

  // Server-side state that must survive a restart (optimizer moments,
  // momentum, a DP wrapper's clipping norm and noise RNG), taken after a
  // round's aggregate_fit. Stateless strategies keep the default.
  virtual StateRecord save_state() const { return {}; }

  // Called instead of initialize_parameters when a job resumes: `global` is
  // the global model saved after the last completed round and `state` what
  // save_state() returned then. Afterwards the strategy must behave exactly
  // as if it had never stopped.
  virtual void restore_state(const Parameters& global, const StateRecord& state) {
    (void)global;
    (void)state;
  }
};

}  // namespace fedtrack
