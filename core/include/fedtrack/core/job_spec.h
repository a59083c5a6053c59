// JobSpec — a validated description of one federated job, torch-free.
//
// connectors/ builds a JobSpec from a YAML job file (see job_config.h there);
// the simulation runtime consumes it. Field names follow the job-file keys.
// Defaults are the "embedded defaults": a federated Fashion-MNIST job that
// runs with no file at all.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fedtrack {

struct PartitionSpec {
  std::string kind = "dirichlet";   // iid | dirichlet | shard
  double alpha = 0.5;               // dirichlet concentration
  std::int64_t min_partition_size = 10;  // dirichlet: resample until every client has this many
  std::int64_t classes_per_client = 2;   // shard: label shards per client
};

struct DataSpec {
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | csv
  std::string path;        // IDX folder or CSV file; fashion-mnist has a default
  std::string test_path;   // csv: a separate test file (else test_fraction is held out)
  std::string label;       // csv: label column name (default: the last column)
  // csv: the declared classes (`classes: [no, yes]`, or `classes: 3` for
  // "0", "1", "2"); a record with another label is corruption. Empty: the
  // training file's labels make the classes.
  std::vector<std::string> classes;
  double test_fraction = 0.2;    // csv without test_path
  double val_fraction = 0.1;     // each client's local hold-out for federated evaluation
  std::int64_t limit_train = 0;  // use only the first N training examples (0 = all)
  std::int64_t limit_test = 0;   // use only the first N test examples (0 = all)
  PartitionSpec partition;
};

struct ClientsSpec {
  std::int64_t count = 10;
  double fraction_fit = 1.0;
  std::int64_t min_fit = 2;
  double fraction_evaluate = 1.0;
  std::int64_t min_evaluate = 2;
  std::int64_t min_available = 2;
};

struct TrainSpec {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 32;
  double lr = 0.05;
  std::string optimizer = "sgd";  // sgd | adam
  double momentum = 0.0;          // sgd only
  double weight_decay = 0.0;
};

struct StrategySpec {
  std::string name = "fedavg";
  bool accept_failures = true;
  // Options, with Flower's meanings; unset = the strategy's Flower default.
  std::optional<double> proximal_mu;           // fedprox
  std::optional<double> server_learning_rate;  // fedavgm (1.0)
  std::optional<double> server_momentum;       // fedavgm (0.0)
  std::optional<double> eta, eta_l, beta_1, beta_2, tau;  // fedadam / fedyogi / fedadagrad
  std::optional<double> beta;                  // fedtrimmedavg (0.2): fraction cut at each end
  std::optional<std::int64_t> num_malicious_clients;  // krum, multikrum (0)
  std::optional<std::int64_t> num_clients_to_keep;    // multikrum (0 = Krum)
  std::optional<double> q;                     // qfedavg (0.2)
  std::optional<double> client_learning_rate;  // qfedavg (0.1)
};

struct EvaluationSpec {
  bool initial = true;     // evaluate the initial model (reported as round 0 / "initial")
  bool federated = true;   // also evaluate on clients' local hold-outs each round
  std::int64_t batch_size = 1000;
};

struct RuntimeSpec {
  std::int64_t parallelism = 0;        // clients fitted at once; 0 = one per core
  std::int64_t threads_per_client = 0; // LibTorch intra-op threads; 0 = cores / parallelism
};

struct TrackingSpec {
  std::string uri;         // MLflow server; empty = MLFLOW_TRACKING_URI, else journal only
  std::string experiment;  // empty = MLFLOW_EXPERIMENT_NAME, else "Default"
  std::string journal = ".fedtrack/journal.sqlite";  // the local SQLite journal
  double timeout = 5;      // seconds any round may wait on MLflow
  bool required = false;   // fail the job when MLflow is unreachable at start or writes are pending at the end
  std::string log_models = "final";  // none | final | best | every: rounds whose model becomes an MLflow LoggedModel
};

struct VersioningSpec {
  bool enabled = true;                  // commit every round's global model
  std::string repo = "fedtrack-models"; // git + DVC repository (created if missing)
  std::string path = "models/global.pt";// the model, relative to the repository root
  std::string remote;                   // DVC remote folder; "" = none
  bool push = false;                    // push commits and tags to git remote origin
  std::string author;                   // "Name <email>" when git has no identity
  // Key versioning.artifact: the model's name in dvc.yaml's artifacts and
  // GTO's tags (a DVC artifact name); "" = the job's name.
  std::string artifact;
  // Key versioning.export: formats committed beside the model each round
  // ("onnx" -> <stem>.onnx, "onnx-int8" -> <stem>.int8.onnx), each DVC-tracked.
  std::vector<std::string> exports;
};

// Robustness experiments only (simulation): the first `clients` clients are
// Byzantine and send global + scale * (their honest update - global); a
// negative scale flips the update's sign.
struct AttackSpec {
  std::int64_t clients = 0;
  double scale = -4.0;
};

// Central differential privacy (core/dp_wrapper.h): off unless dp.mode is set.
struct DpSpec {
  std::string mode;               // "" (off) | server_fixed | server_adaptive | client_fixed | client_adaptive
  double noise_multiplier = 1.0;  // sigma, > 0
  double clipping_norm = 1.0;     // > 0; the initial norm in adaptive modes
  double delta = 1e-5;            // dp_epsilon is reported at this delta, in (0, 1)
  // Adaptive modes only; unset = Flower's defaults (0.5, 0.2, sampled clients / 20).
  std::optional<double> target_clipped_quantile;
  std::optional<double> clip_norm_lr;
  std::optional<double> clipped_count_stddev;
};

// The modes dp.mode may name.
std::vector<std::string> dp_mode_names();

// Whether the reported dp_epsilon bounds a strategy: it must average the
// clipped updates (fedavg, fedprox, fedavgm and the FedOpt family do; the
// robust aggregators and qfedavg do not).
bool dp_epsilon_bounds(const std::string& strategy_name);

struct PrivacySpec {
  DpSpec dp;
  bool enabled() const { return !dp.mode.empty(); }
};

// Secure aggregation (SecAgg+, docs/privacy.md): off unless mode is
// secaggplus. Flower's names and meanings; num_shares and
// reconstruction_threshold are a count (an integer > 1) or a fraction in
// (0, 1] (of the sampled clients / of num_shares).
struct SecureAggregationSpec {
  std::string mode = "none";            // none | secaggplus
  double num_shares = 0.5;
  double reconstruction_threshold = 0.5;
  double clipping_range = 8.0;
  std::int64_t quantization_range = 4194304;   // 2^22
  std::int64_t modulus_range = 4294967296;     // 2^32: a power of two > quantization_range, <= 2^32
  double max_weight = 1000.0;
  double timeout = 60;                  // seconds per stage (network runtime)
  bool enabled() const { return mode == "secaggplus"; }
};

// The strategies secure aggregation composes with: those that only average
// the updates (the same as dp_epsilon_bounds).
bool secure_aggregation_composes(const std::string& strategy_name);

// The network server and the resume point (both runtimes).
struct ServerSpec {
  double round_timeout = 600;        // seconds a sampled client may take per fit (and per evaluate)
  double client_timeout = 30;        // seconds of silence after which a connected client counts as gone
  std::string state;                 // resume state file; "" = "<name>.state.db" in the current directory
  std::int64_t max_message_mb = 1024;// largest request body accepted
  double linger = 3;                 // at most this many seconds after the job until every client heard it ended
};

// Update compression (core/compression.h, docs/compression.md): off unless
// uplink or downlink names a codec.
struct CompressionSpec {
  std::string uplink = "none";    // none | fp16 | int8 | topk: the update a client sends
  std::string downlink = "none";  // none | fp16 | int8: the global model the server broadcasts
  double topk_fraction = 0.01;    // topk: share of each tensor's coordinates sent, in (0, 1]
  bool error_feedback = true;     // lossy uplink: each client adds what it did not send to its next update
  bool enabled() const { return uplink != "none" || downlink != "none"; }
};

// Whether a strategy aggregates top-k sparsified updates as it aggregates
// dense ones. The robust aggregators (fedmedian, fedtrimmedavg, krum,
// multikrum, bulyan) rank or compare whole updates: mostly-zero sparse
// updates break their statistics, so compression.uplink: topk refuses them.
bool aggregates_sparse_updates(const std::string& strategy_name);

struct JobSpec {
  std::string name = "fashion-mnist-fedavg";
  std::uint64_t seed = 42;
  std::int64_t rounds = 5;
  std::string model = "mlp";
  DataSpec data;
  ClientsSpec clients;
  TrainSpec train;
  StrategySpec strategy;
  EvaluationSpec evaluation;
  RuntimeSpec runtime;
  TrackingSpec tracking;
  VersioningSpec versioning;
  AttackSpec attack;
  PrivacySpec privacy;
  SecureAggregationSpec secure_aggregation;
  ServerSpec server;
  CompressionSpec compression;

  // Where each key came from ("job.yaml:7", "--set", "default"), keyed by its
  // dotted path, so later errors (an unknown model name) can point at it.
  std::map<std::string, std::string> sources;

  // "job.yaml:7: " for a key read from a file, "" otherwise.
  std::string where(const std::string& key) const;
};

}  // namespace fedtrack
