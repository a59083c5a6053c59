// What the server round loop tells the rest of the system, torch-free.
//
// The round loop (fedtrack::Server) hands a RoundSummary to every registered
// RoundListener after each round. Tracking (MLflow) and versioning (DVC)
// implement RoundListener without including LibTorch: the global model
// reaches them as bytes through ModelSnapshot.
//
// Threading: listeners are called one call at a time, in registration
// order. on_round runs on the Server's recording thread while the next round
// trains (server.h); the other calls on the thread that runs Server::run. A
// listener that throws stops the job (the error is reported as the job's
// failure).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/model_card.h"
#include "fedtrack/core/records.h"

namespace fedtrack {

// The global model of one round, serialized on first use and then cached.
// Thread-safe. The producers run at most once each.
class ModelSnapshot {
 public:
  using Producer = std::function<std::string()>;

  ModelSnapshot(Producer checkpoint, Producer encoded_parameters);

  // A LibTorch archive the user can torch::load into the same model; its
  // bytes depend only on the model's tensors.
  const std::string& checkpoint_bytes() const;
  // The wire encoding of the parameters (see parameters.h).
  const std::string& encoded_parameters() const;

 private:
  Producer checkpoint_producer_;
  Producer encoded_producer_;
  mutable std::once_flag checkpoint_once_;
  mutable std::once_flag encoded_once_;
  mutable std::string checkpoint_;
  mutable std::string encoded_;
};

// One sampled client's part in a round.
struct ClientRoundStat {
  std::string client_id;
  bool ok = true;             // false: the fit failed or its update was rejected
  std::string error;          // why, when !ok
  std::int64_t num_examples = 0;
  Metrics fit_metrics;        // as reported by the client (train_loss, ...)
  Metrics evaluate_metrics;   // federated evaluation on the client, if any
  std::string data_fingerprint;  // hash over the client's training examples
  std::uint64_t bytes_down = 0;  // global model sent to the client
  std::uint64_t bytes_up = 0;    // update received from the client
  double fit_seconds = 0;
};

struct RoundSummary {
  int round = 0;          // 1..total_rounds
  int total_rounds = 0;
  // Global metrics: eval_loss, eval_accuracy (centralized), train_loss,
  // train_accuracy (aggregated from clients), federated_eval_loss,
  // federated_eval_accuracy, clients_sampled, clients_ok, clients_failed,
  // bytes_down, bytes_up, round_seconds.
  Metrics metrics;
  ConfigRecord fit_config;                // what was sent to every client
  std::vector<ClientRoundStat> clients;   // in client-id order
  std::uint64_t bytes_down = 0;
  std::uint64_t bytes_up = 0;
  double fit_seconds = 0;
  double aggregate_seconds = 0;
  double evaluate_seconds = 0;
  double round_seconds = 0;
  std::shared_ptr<const ModelSnapshot> model;  // the new global model
};

// A dataset the job used, known by its fingerprint (never by its data): the
// centralized test set on the server, a client's training data.
struct DatasetInfo {
  std::string name;           // "fashion-mnist-test", "client-003-train"
  std::string fingerprint;    // SHA-256 hex over the labels, then the feature bytes
  std::int64_t num_examples = 0;
  std::string source;         // where it was read from (a path or URL without credentials), "" unknown
};

struct JobStart {
  std::string job_id;
  std::string name;
  int total_rounds = 0;
  // A resumed job: the same job_id continues after `completed_rounds`
  // (listeners reuse what they recorded before instead of starting anew).
  bool resumed = false;
  int completed_rounds = 0;
  // Params the job computed before starting (the model card: input shape,
  // feature scaling, class names), logged beside the job file's.
  std::vector<std::pair<std::string, std::string>> params{};
  // The card every checkpoint of the job carries; null when the job has none.
  std::shared_ptr<const ModelCard> model_card{};
  // The centralized test set the global metrics (eval_*) are measured on;
  // null when the runtime has none.
  std::shared_ptr<const DatasetInfo> test_set{};
};

// What a resumed job is about to continue from, shown to every listener
// before the job starts (before on_job_start: nothing is recorded yet).
struct ResumeCheck {
  std::string job_id;
  int round = 0;             // the last completed round, the one restored
  std::string state_path;    // where the resume point came from
  std::shared_ptr<const ModelSnapshot> model;  // that round's global model
};

enum class JobStatus { kFinished, kFailed, kKilled };
const char* job_status_name(JobStatus status);  // "FINISHED", "FAILED", "KILLED"

struct JobEnd {
  JobStatus status = JobStatus::kFinished;
  std::string error;          // when failed or killed
  int rounds_completed = 0;
  Metrics final_metrics;      // metrics of the last completed round
};

class RoundListener {
 public:
  virtual ~RoundListener() = default;
  // A listener that recorded `check.round` before the stop verifies that the
  // restored model is the one it recorded; Error(kCorruption) saying which
  // record disagrees stops the job before anything runs or is recorded.
  virtual void check_resume(const ResumeCheck& check) {}
  virtual void on_job_start(const JobStart& start) {}
  // Evaluation of the initial global model, before round 1 (round 0).
  virtual void on_initial_evaluation(const Metrics& metrics) {}
  virtual void on_round(const RoundSummary& summary) = 0;
  virtual void on_job_end(const JobEnd& end) {}
};

}  // namespace fedtrack
