// Server — the round loop every runtime shares (simulation now, network
// later): configure -> fit on sampled clients -> aggregate -> evaluate
// (centralized and federated) -> a RoundSummary to every RoundListener.
//
// Client calls of a round run concurrently on a pool of `parallelism`
// threads; results are put back in client-id order before the strategy sees
// them, so the same seed gives the same bytes. A client whose call throws, or
// whose update has the wrong layout or non-finite values, becomes a
// ClientFailure for that round and changes nothing.
//
// Recording off the critical path: a round's listeners (on_round, then
// ServerOptions::on_round_recorded) run on one recording thread while the
// next round trains, one round at a time and in round order; round N+1's
// resume point (on_round_complete) is saved only after round N was recorded,
// and a listener's failure stops the job at that point (see
// recording_queue.h). on_job_start, on_initial_evaluation and on_job_end
// run on run()'s thread, on_job_end after the last record finished (also
// when the job fails or is stopped). A listener is never called from two
// threads at once. The recording thread reads a round's global tensors
// (RoundSummary::model) while the next round runs: nothing writes into a
// round's global tensors once the round is over (the next aggregate is new
// tensors).
//
// Ownership: the Server borrows the ClientManager, Strategy and listeners;
// they must outlive run(). run() is called once, from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/parameters.h"
#include "fedtrack/core/round_listener.h"
#include "fedtrack/core/state_record.h"

namespace fedtrack {

class ClientManager;
class Strategy;
struct FitResult;
struct ClientFailure;

// What a job needs to continue after its last completed round exactly as if
// it had never stopped (saved after every round; see server_state.h).
struct ResumePoint {
  int completed_round = 0;
  Parameters global;
  StateRecord strategy_state;
  std::string sampler_state;                   // ClientManager::rng_state()
  std::optional<Metrics> initial;              // the initial evaluation, if any
  std::vector<std::pair<int, Metrics>> rounds;  // global metrics of rounds 1..completed_round
  // Set when the listeners may not have recorded round completed_round
  // (the process died after the point was saved): a resume replays it to
  // them (they reuse what they had) before going on.
  std::optional<RoundSummary> unrecorded;
};

struct ServerOptions {
  std::string job_id;
  std::string job_name;
  int num_rounds = 1;
  bool evaluate_initial = true;
  std::size_t parallelism = 1;               // client calls in flight at once
  std::function<void()> on_worker_start;     // runs on each pool thread first
  std::function<bool()> stop_requested;      // polled between steps; true = KILLED
  // Set: every fit task's config gets "seed" = task_seed(*task_seed, round,
  // client id), which TorchClient shuffles with (networked clients have no
  // seed of their own).
  std::optional<std::uint64_t> task_seed;
  // Seconds a client may take for its fit (and, separately, its evaluate)
  // call of a round; 0 = no limit. Late clients count as failures.
  double round_timeout = 0;
  // A round with fewer fit results than this fails the job (Error
  // kUnavailable) after every sampled client answered or timed out.
  std::int64_t min_fit_results = 0;
  // Runs before each round (e.g. the network server waits for clients).
  std::function<void(int round)> before_round;
  // Runs after each round, before its listeners, with what a resume needs
  // (so a crash while recording never trains a round twice) ...
  std::function<void(const ResumePoint&)> on_round_complete;
  // ... and after the listeners recorded it (on the recording thread, see
  // Server).
  std::function<void(int round)> on_round_recorded;
  // Set (secure aggregation): runs on the round's fit results before the
  // clients.min_fit check and the strategy; it may turn results into
  // failures, replaces their parameters with the secure mean and adds its
  // metrics to the round's.
  std::function<void(int round, const Parameters& global, std::vector<FitResult>& results,
                     std::vector<ClientFailure>& failures, Metrics& metrics)>
      secure_aggregation;
  // A test seam: round N's record starts only once round N+1 has trained
  // (or the job ends), so kill-point tests hit that window every round.
  bool hold_records_until_next_round = false;
  // Set: every checkpoint carries this card (checkpoint_bytes), and
  // JobStart::params lists it (model_card_params).
  std::shared_ptr<const ModelCard> model_card;
  // Set: JobStart::test_set (the centralized test set, by fingerprint).
  std::shared_ptr<const DatasetInfo> test_set;
};

// The seed of one fit task: a hash of the job seed, the round and the client.
std::uint64_t task_seed(std::uint64_t job_seed, int round, const std::string& client_id);

struct ServerResult {
  Parameters parameters;                            // the final global model
  std::optional<Metrics> initial;                   // evaluation of the initial model
  std::vector<std::pair<int, Metrics>> rounds;      // (round, global metrics), 1..N
  std::shared_ptr<const ModelSnapshot> final_model;
};

class Server {
 public:
  Server(ClientManager& clients, Strategy& strategy, ServerOptions options);

  // Not owned; called in the order added.
  void add_listener(RoundListener* listener);

  // Runs every round. Listeners hear on_job_end in every case; a stop request
  // ends the job as Error(kCancelled) (status KILLED), any other exception
  // as FAILED, and is rethrown. With `resume`, rounds after
  // resume->completed_round run from its model, strategy and sampler state.
  ServerResult run(const ResumePoint* resume = nullptr);

 private:
  Metrics run_round(int round, Parameters& global, RoundSummary& summary);
  void check_stop() const;

  ClientManager& clients_;
  Strategy& strategy_;
  ServerOptions options_;
  std::vector<RoundListener*> listeners_;
};

}  // namespace fedtrack
