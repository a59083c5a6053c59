// Logged models — the rounds whose global model becomes an MLflow 3
// LoggedModel (job key tracking.log_models), and the few REST calls on
// LoggedModels that promotion needs.
//
// A logged model is journalled like every other tracking write, in the
// transaction that records its round (or, for `final`, the job's end), and
// sent by JournalSync in order, exactly once:
//   model_create    POST /mlflow/logged-models: name "<job name>-round-003",
//                   source_run_id = the job's run, tags (lineage: job id,
//                   round, git commit / tag, DVC md5 / path / repo, model
//                   sha256; fedtrack.model_key; fedtrack.log_models = why;
//                   the job's mlflow.source.* / mlflow.user), params (the
//                   job's, at most 100).
//   model_upload    PUT of the checkpoint (and any extra file) into the
//                   model's artifact location through the server's artifact
//                   proxy; the bytes wait in the journal until sent.
//   model_finalize  PATCH status LOGGED_MODEL_READY (UPLOAD_FAILED when an
//                   upload was refused for good).
//   model_link      POST /mlflow/runs/outputs: the job's run outputs the
//                   model at step = round.
//   model_metrics   POST /mlflow/runs/log-batch on the job's run with the
//                   round's global metrics carrying model_id: the metrics
//                   of the model (MLflow ignores a metric the run has).
// Model ids are made by the server, so a create is never resent blindly:
// the journal keeps the id the server answered; a create that was tried
// before without an answer is first looked up by its fedtrack.model_key tag
// (found: that one is used), and a "model_verify" check is journalled to
// delete a duplicate a late create may still make. runs/outputs is not
// idempotent either: a link tried before is sent again only when the job's
// run does not list it.
//
// Which rounds (LogModels): none; final = the last round's model, logged
// once when the job ends FINISHED (with commit-first recording the final
// round is only known then); best = every round whose kBestModelMetric
// beats every earlier round of the job (so the newest logged model is the
// best so far; a resumed job remembers the journalled scores); every =
// every round. A round is logged at most once (its model key).
//
// Not thread-safe; used from the thread that records rounds.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedtrack/core/round_listener.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

enum class LogModels { kNone, kFinal, kBest, kEvery };

// "none", "final", "best", "every", in that order (the job key's choices).
const std::vector<std::string>& log_models_choices();
// Error(kInvalidArgument) naming the value and the choices.
LogModels parse_log_models(const std::string& text);
const char* log_models_name(LogModels policy);

// `best`'s metric: the centralized test accuracy, higher is better.
inline constexpr const char* kBestModelMetric = "eval_accuracy";
// The tag that says why a model was logged (final, best, every).
inline constexpr const char* kLogModelsTag = "fedtrack.log_models";

struct LoggedModelFile {
  std::string path;   // inside the model's artifacts, e.g. "global.pt"
  std::string bytes;
};

struct LoggedModelOptions {
  LogModels policy = LogModels::kFinal;
  std::string checkpoint_name = "global.pt";  // the checkpoint's path in the model's artifacts
  std::vector<KeyValue> tags;    // on every model: mlflow.user, mlflow.source.git.commit, ...
  std::vector<KeyValue> params;  // the job's; the first 100 are the model's params
  // Files a model carries beside the checkpoint (an MLflow model
  // directory), asked for the logged rounds only; may be empty.
  std::function<std::vector<LoggedModelFile>(const RoundSummary&)> files;
};

class LoggedModels {
 public:
  // `journal` is borrowed.
  LoggedModels(Journal& journal, LoggedModelOptions options);

  const LoggedModelOptions& options() const { return options_; }

  // A job (or its resume) starts: remembers the best journalled score.
  void on_job_start(const JobStart& start);
  // In the transaction that records the round: journals the round's model
  // when the policy logs it (every, best) or remembers it (final).
  // `metrics_ms` is the timestamp of the round's metrics on the job's run:
  // the model's metrics are those very points.
  void journal_round(const RoundSummary& summary, const std::vector<KeyValue>& lineage_tags, std::int64_t metrics_ms);
  // In the transaction that ends the job, before its run ends: the final
  // model, when the policy is final and the job finished.
  void journal_job_end(const JobEnd& end);

  // "<job_id>/round-003/model".
  static std::string model_key(const std::string& job_id, int round);

 private:
  void journal_model(const RoundSummary& s, const std::vector<KeyValue>& lineage_tags, std::int64_t metrics_ms,
                     const std::string& reason);

  Journal& journal_;
  LoggedModelOptions options_;
  std::string job_id_;
  std::string job_name_;
  std::vector<KeyValue> start_params_;
  std::optional<double> best_;  // the best score logged so far (best)
  struct Remembered {
    RoundSummary summary;  // without its clients
    std::vector<KeyValue> lineage_tags;
    std::int64_t metrics_ms = 0;
  };
  std::unique_ptr<Remembered> last_;  // the newest round (final)
};

// --- LoggedModels on a server (promotion, tests) ---

struct LoggedModelInfo {
  std::string model_id;
  std::string experiment_id;
  std::string name;
  std::string status;        // LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED
  std::string artifact_uri;  // mlflow-artifacts:/... when the server proxies artifacts
  std::string source_run_id;
  std::int64_t creation_ms = 0;
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> params;
};

// All models of `experiment_ids` matching `filter` (MLflow's search syntax,
// e.g. "tags.`fedtrack.round` = '3'"), following page tokens.
std::vector<LoggedModelInfo> search_logged_models(MlflowClient& client, const std::vector<std::string>& experiment_ids,
                                                  const std::string& filter);
// Error(kNotFound) when there is none.
LoggedModelInfo get_logged_model(MlflowClient& client, const std::string& model_id);
// A registry version of `name` made from a LoggedModel as MLflow 3 does:
// source "models:/<model_id>" and model_id set; `run_id` (may be empty)
// links the version to a run as well.
ModelVersion create_model_version_from_logged_model(MlflowClient& client, const std::string& name,
                                                    const std::string& model_id, const std::string& run_id);

}  // namespace fedtrack
