// What both runtimes take and give back: `fedtrack run` (run_simulation,
// simulation.h) and `fedtrack server` (run_network_server, network.h) run
// the same job loop with the same options and report the same result; the
// network server's options embed these and add only what is its own
// (listen address, tokens, TLS).
//
// Torch-free header.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/round_listener.h"

namespace fedtrack {

struct JobRunOptions {
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

struct JobResult {
  std::string job_id;
  int resumed_after = 0;                          // rounds done before this process (resume)
  std::optional<Metrics> initial;                 // the initial model's evaluation
  std::vector<std::pair<int, Metrics>> rounds;    // 1..N
  Metrics final_metrics;                          // the last round's
  std::shared_ptr<const ModelSnapshot> final_model;
  std::vector<std::string> client_fingerprints;   // run_simulation: by client index
  // The network server's sites: (client name, its last reported data
  // fingerprint), in name order; a site that returned no fit result in this
  // process (after --resume: since the restart) is absent.
  std::vector<std::pair<std::string, std::string>> site_fingerprints;
};

}  // namespace fedtrack
