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
// Ownership: the Server borrows the ClientManager, Strategy and listeners;
// they must outlive run(). run() is called once, from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/parameters.h"
#include "fedtrack/core/round_listener.h"

namespace fedtrack {

class ClientManager;
class Strategy;

struct ServerOptions {
  std::string job_id;
  std::string job_name;
  int num_rounds = 1;
  bool evaluate_initial = true;
  std::size_t parallelism = 1;               // client calls in flight at once
  std::function<void()> on_worker_start;     // runs on each pool thread first
  std::function<bool()> stop_requested;      // polled between steps; true = KILLED
};

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
  // as FAILED, and is rethrown.
  ServerResult run();

 private:
  Metrics run_round(int round, Parameters& global, RoundSummary& summary);
  void check_stop() const;

  ClientManager& clients_;
  Strategy& strategy_;
  ServerOptions options_;
  std::vector<RoundListener*> listeners_;
};

}  // namespace fedtrack
