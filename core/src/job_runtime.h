// Private to core: what the simulation and the network server share — the
// server side of a job (its test data, model, strategy, round-loop options)
// and its resume point on disk.
#pragma once

#include <torch/nn/modules/container/any.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/server.h"
#include "server_state.h"
#include "fedtrack/core/simulation.h"
#include "fedtrack/core/strategy.h"

namespace fedtrack {

// Rethrows a setup error with the job-file location of the key behind it.
template <typename F>
auto at_key(const JobSpec& job, const std::string& key, F f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.code(), job.where(key) + key + ": " + e.what());
  }
}

struct ServerSide {
  ModelInput input;
  torch::nn::AnyModule model;   // the server's copy, for centralized evaluation
  std::unique_ptr<Strategy> strategy;
  std::shared_ptr<const ModelCard> card;  // for ServerOptions::model_card
  std::shared_ptr<const DatasetInfo> test_set;  // for ServerOptions::test_set
};

// The card of the job's model: name, input shape, the data's scaling, csv
// columns and class names (Fashion-MNIST's labels for that dataset).
ModelCard model_card_for(const JobSpec& job, const DatasetSplits& data);

// The model (seeded initial weights), the job's strategy with its fit and
// evaluate configs and centralized evaluation on `test` (kept alive by the
// strategy).
ServerSide make_server_side(const JobSpec& job, const DatasetSplits& data,
                            const std::function<void(const std::string&)>& log);

// Round-loop options every runtime shares.
ServerOptions server_options_for(const JobSpec& job, const std::string& job_id);

// The resume point of a job on disk. Without a path, does nothing. A new
// state file is created by the first save (after round 1), so a job that
// fails before it leaves no file behind.
class StateKeeper {
 public:
  // Refuses (kInvalidArgument) an unfinished state without `resume`, a
  // `resume` without a state or of a finished job, and a state saved for a
  // different job (digest).
  StateKeeper(const std::string& path, bool resume, const JobSpec& job, const std::string& job_digest);

  // The point to resume from (when resuming).
  const std::optional<ResumePoint>& resume_point() const { return point_; }
  // The job id to use (and save under): the saved one when resuming, else `fresh`.
  std::string adopt_job_id(const std::string& fresh);

  void save(const ResumePoint& point);
  void recorded();
  void finished();

 private:
  std::string path_;
  std::unique_ptr<ServerStateFile> file_;
  SavedState saved_;
  std::optional<ResumePoint> point_;
};

// Runs the job's rounds, from the state's resume point when there is one:
// the resume point is saved after each round and marked recorded once the
// listeners have it, and the job is marked finished at the end. Fills
// `result`'s resumed_after, initial, rounds, final metrics and model.
void run_rounds(ClientManager& clients, Strategy& strategy, ServerOptions options, StateKeeper& state,
                const std::vector<RoundListener*>& listeners, const std::string& state_path,
                const std::function<void(const std::string&)>& log, JobResult& result);

}  // namespace fedtrack
