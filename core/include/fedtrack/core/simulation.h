// The simulation runtime: a whole federation in one process. Loads the
// dataset, partitions its training set among `clients.count` virtual clients
// (each keeps `data.val_fraction` of its share for federated evaluation),
// and runs the shared Server round loop with the job's strategy, fitting
// clients concurrently on a thread pool sized to the machine; LibTorch's
// intra-op threads are set per pool thread so the two do not oversubscribe
// the cores. Results are aggregated in client-id order: the same JobSpec and
// seed give bit-identical metrics and model bytes.
//
// Torch-free header: callers (the CLI) need not compile against LibTorch.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/round_listener.h"

namespace fedtrack {

struct SimulationOptions {
  std::string job_id;
  std::vector<RoundListener*> listeners;   // not owned
  std::function<bool()> stop_requested;    // polled between steps
  std::function<void(const std::string&)> log;  // one line of setup progress
  // The job's resume point, saved after every round ("" = none). With
  // `resume`, the job continues from it under its saved job id; without,
  // an unfinished state there is refused (kInvalidArgument).
  std::string state_path;
  bool resume = false;
  std::string job_digest;  // what the state must have been saved for
};

struct SimulationResult {
  std::string job_id;
  int resumed_after = 0;                          // rounds done before this process (resume)
  std::optional<Metrics> initial;                 // the initial model's evaluation
  std::vector<std::pair<int, Metrics>> rounds;    // 1..N
  Metrics final_metrics;                          // the last round's
  std::shared_ptr<const ModelSnapshot> final_model;
  std::vector<std::string> client_fingerprints;   // by client index
};

// Errors: kInvalidArgument / kNotFound for a job that cannot run (unknown
// model, missing dataset), prefixed with the job-file location of the key;
// kCancelled when stop_requested() turned true.
SimulationResult run_simulation(const JobSpec& job, const SimulationOptions& options);

}  // namespace fedtrack
