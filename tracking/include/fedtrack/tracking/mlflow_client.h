// MlflowClient — a C++ client for MLflow's REST API 2.0: experiments, runs,
// batched logging, metric history, proxied artifacts and the model registry.
//
// Configuration mirrors the Python client's environment variables
// (MlflowConfig::from_environment). Requests that fail with 408, 429, 500,
// 502, 503, 504 or without an answer are retried with exponential backoff
// and jitter, honouring Retry-After, up to max_retries times and never past
// the deadline set with set_deadline(). A server error becomes
// fedtrack::Error naming MLflow's error_code and message; codes map to
// ErrorCode (RESOURCE_DOES_NOT_EXIST -> kNotFound, 401 -> kUnauthenticated,
// ...), by MLflow's error_code and the HTTP status, never by message text.
//
// runs/create is not idempotent, so it is never resent blindly: create_run
// sends once, and create_run_once looks the run up by a unique tag before
// any further attempt (exactly-once creation, see there).
//
// Credentials: user:password in the tracking URI are taken out of it (used
// as Basic credentials unless MLFLOW_TRACKING_USERNAME/PASSWORD or a token
// are set), so config().tracking_uri, every request URL and every error
// message are free of them. Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedtrack/tracking/http.h"

namespace fedtrack {

class Error;

struct MlflowConfig {
  std::string tracking_uri;        // http(s)://host:port[/prefix]
  std::string token;               // MLFLOW_TRACKING_TOKEN (Bearer)
  std::string username, password;  // MLFLOW_TRACKING_USERNAME / _PASSWORD (Basic)
  bool insecure_tls = false;       // MLFLOW_TRACKING_INSECURE_TLS
  std::string server_cert_path;    // MLFLOW_TRACKING_SERVER_CERT_PATH
  int max_retries = 7;             // MLFLOW_HTTP_REQUEST_MAX_RETRIES
  double backoff_factor = 2;       // MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR
  double backoff_jitter = 1.0;     // MLFLOW_HTTP_REQUEST_BACKOFF_JITTER
  double timeout_seconds = 120;    // MLFLOW_HTTP_REQUEST_TIMEOUT

  // Reads the variables above; `tracking_uri` (if not empty) wins over
  // MLFLOW_TRACKING_URI. Error(kInvalidArgument) for a malformed number.
  static MlflowConfig from_environment(const std::string& tracking_uri = "");

  // What a job's tracking section resolves to, as given (for the job's
  // logged params): `tracking_uri`, else $MLFLOW_TRACKING_URI, else "";
  // `experiment`, else a non-empty $MLFLOW_EXPERIMENT_NAME, else "Default".
  static std::string resolve_tracking_uri(const std::string& tracking_uri);
  static std::string resolve_experiment(const std::string& experiment);
};

// Which experiment a job's runs go to, decided as MLflow's Python client
// does (mlflow.tracking.fluent._get_experiment_id, MLflow 3.17):
//   1. the job's tracking.experiment (like mlflow.set_experiment in code,
//      which wins over the environment): by name;
//   2. else $MLFLOW_EXPERIMENT_NAME: by name (created when missing); if
//      $MLFLOW_EXPERIMENT_ID is set too, the named experiment, when it
//      exists, must have that id (else Python raises; so do we);
//   3. else $MLFLOW_EXPERIMENT_ID: by id; it must exist (never created);
//   4. else "Default".
struct ExperimentChoice {
  std::string name;  // by name (1, 2, 4); for 3, its name once known ("" before)
  std::string id;    // 3: where the runs go; 2: the id the named experiment must have
  bool by_id = false;
  // Where the choice came from, for messages: "tracking.experiment",
  // "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID" or "the default".
  std::string origin;

  static ExperimentChoice resolve(const std::string& job_experiment);
};

struct Metric {
  std::string key;
  double value = 0;  // NaN and +-Inf are sent the way MLflow accepts them
  std::int64_t timestamp = 0;  // ms since the epoch
  std::int64_t step = 0;
  // MLflow 3: the dataset the value was measured on (both or neither). The
  // server keeps them with a LoggedModel's metrics.
  std::string dataset_name{};
  std::string dataset_digest{};
};

struct KeyValue {
  std::string key;
  std::string value;
};

struct RunInfo {
  std::string run_id;
  std::string experiment_id;
  std::string run_name;
  std::string status;  // RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
  std::int64_t start_time = 0;
  std::int64_t end_time = 0;
  std::string artifact_uri;
  std::string lifecycle_stage;
};

// One dataset input of a run (MLflow 3's DatasetInput: a Dataset plus input
// tags such as mlflow.data.context = training | evaluation). `schema` and
// `profile` are JSON text; an input logged twice is kept once by the server.
struct DatasetInput {
  std::string name;
  std::string digest;       // at most 36 characters
  std::string source_type;  // "local", ...
  std::string source;       // JSON text, e.g. {"uri": "/data/test"}
  std::string schema;       // JSON text ("" none)
  std::string profile;      // JSON text ("" none)
  std::vector<KeyValue> tags;
};

// What create_run_once did.
struct CreatedRun {
  RunInfo info;
  bool found = false;  // an earlier create had gone through; no new run was made
  // A create may still be on its way to the server (one failed without a
  // clear answer, or an earlier one may have): look again later.
  bool uncertain = false;
  // Runs that carried the same unique tag besides the one kept: ended as
  // KILLED and deleted (see create_run_once).
  std::vector<std::string> removed_duplicates;
  // Duplicates the server would not let us end or delete: "id (why)".
  std::vector<std::string> kept_duplicates;
};

struct MlflowRun {
  RunInfo info;
  std::map<std::string, double> metrics;       // latest value per key
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
};

struct Experiment {
  std::string experiment_id;
  std::string name;
  std::string artifact_location;
  std::string lifecycle_stage;
};

struct ModelVersion {
  std::string name;
  std::string version;
  std::string source;
  std::string run_id;
  std::string status;
  std::map<std::string, std::string> tags;
  std::vector<std::string> aliases;
};

struct RegisteredModel {
  std::string name;
  std::map<std::string, std::string> aliases;  // alias -> version
  std::map<std::string, std::string> tags;
};

// The server's limits for one runs/log-batch request.
struct BatchLimits {
  std::size_t max_metrics = 1000;
  std::size_t max_params = 100;
  std::size_t max_tags = 100;
  std::size_t max_entities = 1000;
  std::size_t max_bytes = 1000000;
};

// One runs/log-batch request body's worth of entities.
struct LogBatch {
  std::vector<Metric> metrics;
  std::vector<KeyValue> params;
  std::vector<KeyValue> tags;
  std::size_t size() const { return metrics.size() + params.size() + tags.size(); }
};

// Splits entities into batches within `limits`, params first, then tags, then
// metrics, each in its given order.
std::vector<LogBatch> split_log_batch(const LogBatch& all, const BatchLimits& limits = {});

// Makes `key` acceptable to MLflow: characters outside [A-Za-z0-9_/.\- :]
// become '_', empty, "." and ".." path segments are dropped or replaced, and
// the result is cut to 250 characters.
std::string sanitize_key(const std::string& key);

class MlflowClient {
 public:
  using Clock = std::chrono::steady_clock;

  // `transport` null = libcurl with the config's TLS options. `sleep` is the
  // seam for backoff waits (tests pass a recorder).
  explicit MlflowClient(MlflowConfig config, std::unique_ptr<HttpTransport> transport = nullptr,
                        std::function<void(double seconds)> sleep = {});

  const MlflowConfig& config() const { return config_; }

  // No request starts, no backoff waits, and no request runs past this point
  // (its timeout is cut to fit); std::nullopt removes the bound.
  void set_deadline(std::optional<Clock::time_point> deadline) { deadline_ = deadline; }

  // Requests sent so far, retries included (for figures).
  std::int64_t requests_sent() const { return requests_; }

  // --- experiments ---
  std::optional<Experiment> get_experiment_by_name(const std::string& name);
  std::string create_experiment(const std::string& name);
  std::string get_or_create_experiment(const std::string& name);  // returns the id
  // By id; std::nullopt when the server has no such experiment.
  std::optional<Experiment> get_experiment(const std::string& experiment_id);

  // --- runs ---
  // One runs/create request, never resent (a create whose answer was lost
  // may have happened; see create_run_once).
  RunInfo create_run(const std::string& experiment_id, const std::string& run_name,
                     std::int64_t start_time_ms, const std::vector<KeyValue>& tags,
                     const std::string& user = "");
  // Creates the run carrying `unique_tag` exactly once. A create that fails
  // without a clear answer (5xx, 408, 429, timeout, dropped connection) may
  // have gone through, so before every further attempt (and before the
  // first when `may_exist`) the run is looked up by `unique_tag`; found, it
  // is returned instead of creating another. Retries follow the client's
  // backoff and deadline. When the lookup finds several runs with the tag
  // (a gateway that created twice, an older client), the one with the
  // earliest start_time, then the lowest run id, is kept and the others are
  // ended KILLED and deleted; their ids are returned so the caller can say so.
  CreatedRun create_run_once(const std::string& experiment_id, const KeyValue& unique_tag,
                             const std::string& run_name, std::int64_t start_time_ms,
                             const std::vector<KeyValue>& tags, const std::string& user, bool may_exist);
  // The active runs of `experiment_id` tagged key = value (empty: none), after
  // removing duplicates as create_run_once does; `keep` (if not empty) names
  // the run to keep; when it is not among them nothing is removed.
  std::optional<CreatedRun> find_unique_run(const std::string& experiment_id, const KeyValue& unique_tag,
                                            const std::string& keep = "");
  void delete_run(const std::string& run_id);
  void update_run(const std::string& run_id, const std::string& status, std::int64_t end_time_ms);
  MlflowRun get_run(const std::string& run_id);
  // All runs matching `filter` (MLflow search syntax), following page tokens.
  std::vector<MlflowRun> search_runs(const std::vector<std::string>& experiment_ids,
                               const std::string& filter = "",
                               const std::vector<std::string>& order_by = {},
                               std::size_t page_size = 1000);
  // Logs everything, split into as few requests as the limits allow.
  void log_batch(const std::string& run_id, const LogBatch& batch);
  void set_tag(const std::string& run_id, const std::string& key, const std::string& value);
  // runs/log-inputs (MLflow 3), in requests of at most 1000 datasets.
  void log_inputs(const std::string& run_id, const std::vector<DatasetInput>& datasets);
  std::vector<Metric> get_metric_history(const std::string& run_id, const std::string& key);

  // --- artifacts, through the server's proxied artifact API ---
  // `artifact_uri` is a run's artifact_uri (mlflow-artifacts:/...).
  void upload_artifact(const std::string& artifact_uri, const std::string& path,
                       const std::string& bytes);
  std::string download_artifact(const std::string& artifact_uri, const std::string& path);
  std::vector<std::string> list_artifacts(const std::string& artifact_uri, const std::string& path = "");

  // --- model registry ---
  RegisteredModel create_registered_model(const std::string& name);
  RegisteredModel get_registered_model(const std::string& name);
  ModelVersion create_model_version(const std::string& name, const std::string& source,
                                    const std::string& run_id);
  ModelVersion get_model_version(const std::string& name, const std::string& version);
  void set_model_version_tag(const std::string& name, const std::string& version,
                             const std::string& key, const std::string& value);
  void set_registered_model_alias(const std::string& name, const std::string& alias,
                                  const std::string& version);
  ModelVersion get_model_version_by_alias(const std::string& name, const std::string& alias);
  void delete_registered_model_alias(const std::string& name, const std::string& alias);

  // One REST call: `path` below /api/2.0/, `json` the body (POST, PATCH,
  // DELETE) or the query (GET). Returns the response body.
  std::string call(const std::string& method, const std::string& path, const std::string& json,
                   bool retry = true);

 private:
  // `retry` false: one attempt only (a request that is not idempotent).
  std::string send_with_retries(HttpRequest request, bool retry = true);
  // Sleeps before attempt `attempt + 1`, or throws `failure` when there is
  // no attempt left or the wait would pass the deadline.
  void backoff(int attempt, double retry_after, const Error& failure);
  std::string artifact_url(const std::string& artifact_uri, const std::string& path) const;

  MlflowConfig config_;
  std::unique_ptr<HttpTransport> transport_;
  std::function<void(double)> sleep_;
  std::optional<Clock::time_point> deadline_;
  std::int64_t requests_ = 0;
};

}  // namespace fedtrack
