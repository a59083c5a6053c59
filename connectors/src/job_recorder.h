// JobRecorder — the job wiring between tracking and versioning, the one
// place that knows both (they never call each other).
//
// Per round, commit first, then record once:
//   1. the global model is committed and tagged in the DVC repository; the
//      commit's trailers name the round's deterministic run key, and its
//      MLflow run id and the parent run id when known. TrackingListener
//      makes each round's run one round ahead (round 1's with the parent
//      run), so the id is known whenever MLflow answered then; when it was
//      away the run key is what links them and the journal resolves it;
//   2. one TrackingListener::record_round call: the round's metrics,
//      params and lineage tags (commit, tag, md5, path, repo), its end, and
//      the next round's run, in one journal transaction and one sync pass
//      (so at most one tracking.timeout per round when MLflow is away).
// Without a tracking URI everything still goes to the journal; with
// versioning disabled the commit step is skipped.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/round_listener.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/logged_models.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "fedtrack/versioning/model_repository.h"

namespace fedtrack {

class JobRecorder : public RoundListener {
 public:
  // Records to the job's tracking.uri / experiment, or, when the job leaves
  // them empty, MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME or
  // MLFLOW_EXPERIMENT_ID (ExperimentChoice: as MLflow's Python client
  // decides), else "Default", and logs the job's params with those values. The journal and
  // the model repository are opened (or created) once the job starts
  // (check_resume / on_job_start): a job that fails before that (a bad
  // data path, an unknown model) leaves neither behind.
  JobRecorder(const JobSpec& job, const std::string& job_path, std::ostream& err);

  // A resumed job's model must be the one committed for that round (the
  // md5 in its tag's .dvc) and the one journalled (fedtrack.model_sha256),
  // when they exist: otherwise Error(kCorruption) saying what to do.
  void check_resume(const ResumeCheck& check) override;
  void on_job_start(const JobStart& start) override;
  void on_initial_evaluation(const Metrics& metrics) override;
  void on_round(const RoundSummary& summary) override;
  void on_job_end(const JobEnd& end) override;

  struct Report {
    nlohmann::json tracking;
    nlohmann::json versioning;  // null when versioning is off
  };
  // Prints where the job's records are (or what still waits) on stderr.
  // Before the job started: prints nothing, both parts null.
  Report finish();

  // With tracking.required: Error(kUnavailable) when `report` (finish()'s)
  // says writes are still pending; otherwise nothing.
  void check_nothing_pending(const Report& report) const;

 private:
  void open();  // the journal and the model repository; idempotent
  // tracking.required: the server answers and takes the credentials, within
  // tracking.timeout (at least 1 s); else the Error (unavailable: exit 4;
  // unauthenticated / permission denied: exit 6) naming the server.
  void check_tracking_reachable(const TrackingSpec& tracking);
  // When the environment names an experiment id: the experiment exists (by
  // id) or agrees with MLFLOW_EXPERIMENT_NAME, as MLflow's Python client
  // requires; Error(kInvalidArgument) otherwise. Skipped when the server does
  // not answer (the journal keeps the writes).
  void check_experiment(const TrackingSpec& tracking);
  bool required_ = false;
  ExperimentChoice experiment_;

  std::string journal_path_;
  // The job config flattened, secrets removed: the parent run's MLflow
  // params and the model repository's dvclive/params.yaml (one list).
  std::vector<std::pair<std::string, std::string>> job_params_;
  TrackingOptions tracking_options_;
  std::unique_ptr<VersioningOptions> versioning_;  // null when versioning is off
  std::ostream& err_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<MlflowClient> client_;
  std::unique_ptr<TrackingListener> tracking_;
  LoggedModelOptions model_options_;        // tracking.log_models
  std::unique_ptr<LoggedModels> models_;    // null with log_models: none
  std::unique_ptr<ModelRepository> repository_;
  std::string uri_;  // the tracking URI without credentials
  std::string secure_aggregation_;  // the rounds' commit trailer: "secaggplus", or empty
  JobStart start_;
  std::vector<RoundCommit> commits_;
  // versioning.export: (format, path in the repository) committed beside the model.
  std::vector<std::pair<std::string, std::string>> exports_;
  std::vector<RoundOutput> export_round(const RoundSummary& s) const;
  std::vector<LoggedModelFile> logged_model_files(const RoundSummary& s) const;
};

}  // namespace fedtrack
