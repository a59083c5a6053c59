#include <gtest/gtest.h>

#include "fedtrack/connectors/job_config.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_job(yaml, "job.yaml", overrides);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "(no error)";
}

TEST(JobConfig, EmptyFileGivesTheEmbeddedDefaults) {
  const JobSpec job = parse_job("", "job.yaml");
  EXPECT_EQ(job.name, "fashion-mnist-fedavg");
  EXPECT_EQ(job.model, "mlp");
  EXPECT_EQ(job.clients.count, 10);
  EXPECT_EQ(job.data.partition.kind, "dirichlet");
  EXPECT_EQ(job.data.partition.alpha, 0.5);
  EXPECT_EQ(job.strategy.name, "fedavg");
  EXPECT_GE(job.rounds, 5);
}

TEST(JobConfig, ReadsTheDocumentedKeys) {
  const JobSpec job = parse_job(R"(
name: fashion-mnist-fedavg
seed: 42
rounds: 5
model: cnn
data:
  dataset: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  partition: {kind: shard, classes_per_client: 3}
clients: {count: 20, fraction_fit: 0.5, min_fit: 4}
train: {epochs: 2, batch_size: 64, lr: 0.01, optimizer: adam}
strategy: {name: fedavg}
)", "job.yaml");
  EXPECT_EQ(job.seed, 42u);
  EXPECT_EQ(job.model, "cnn");
  EXPECT_EQ(job.data.partition.kind, "shard");
  EXPECT_EQ(job.data.partition.classes_per_client, 3);
  EXPECT_EQ(job.clients.count, 20);
  EXPECT_EQ(job.clients.fraction_fit, 0.5);
  EXPECT_EQ(job.clients.min_fit, 4);
  EXPECT_EQ(job.train.epochs, 2);
  EXPECT_EQ(job.train.optimizer, "adam");
  EXPECT_EQ(job.train.lr, 0.01);
  EXPECT_EQ(job.sources.at("train.lr"), "job.yaml:11");
  EXPECT_EQ(job.where("model"), "job.yaml:5: ");
}

TEST(JobConfig, JsonIsYamlToo) {
  const JobSpec job = parse_job(R"({"rounds": 3, "train": {"lr": 0.2}})", "job.json");
  EXPECT_EQ(job.rounds, 3);
  EXPECT_EQ(job.train.lr, 0.2);
}

TEST(JobConfig, UnknownKeyNamesKeyFileAndLine) {
  EXPECT_EQ(error_of("rounds: 3\ntrain:\n  epochs: 1\n  lrr: 0.1\n"),
            "job.yaml:4: unknown key 'train.lrr' (known in train: epochs, batch_size, lr, "
            "optimizer, momentum, weight_decay)");
  EXPECT_EQ(error_of("round: 3\n"),
            "job.yaml:1: unknown key 'round' (known: name, seed, rounds, model, data, clients, "
            "train, strategy, evaluation, runtime, tracking, versioning, attack, privacy, secure_aggregation, server, compression)");
}

TEST(JobConfig, ServerKeysAreCheckedAndOnlyModelKeysMakeTheDigest) {
  const JobSpec job = parse_job("server:\n  round_timeout: 30\n  client_timeout: 5\n  state: s.db\n", "job.yaml");
  EXPECT_EQ(job.server.round_timeout, 30);
  EXPECT_EQ(job.server.client_timeout, 5);
  EXPECT_EQ(state_path_of(job), "s.db");
  EXPECT_EQ(state_path_of(parse_job("name: bank\n", "job.yaml")), "bank.state.db");
  EXPECT_EQ(error_of("server:\n  client_timeout: 0\n"), "job.yaml:2: server.client_timeout: must be > 0 and <= 1e+07, got 0");
  EXPECT_NE(error_of("server:\n  roundtimeout: 3\n").find("unknown key 'server.roundtimeout'"), std::string::npos);
  // Operational keys may change between a crash and --resume; the model's may not.
  EXPECT_EQ(job_digest(job), job_digest(parse_job("server:\n  round_timeout: 99\ntracking:\n  timeout: 1\n", "j")));
  EXPECT_NE(job_digest(job), job_digest(parse_job("train:\n  lr: 0.1\n", "j")));
}

TEST(JobConfig, WrongTypeNamesKeyFileAndLine) {
  EXPECT_EQ(error_of("seed: 1\ntrain: {lr: fast}\n"), "job.yaml:2: train.lr: expected a number, got 'fast'");
  EXPECT_EQ(error_of("rounds: 2.5\n"), "job.yaml:1: rounds: expected an integer, got '2.5'");
  EXPECT_EQ(error_of("clients: [1, 2]\n"), "job.yaml:1: clients: expected a mapping of keys");
  EXPECT_EQ(error_of("evaluation:\n  federated: maybe\n"),
            "job.yaml:2: evaluation.federated: expected true or false, got 'maybe'");
}

TEST(JobConfig, OutOfRangeValuesAreRejected) {
  EXPECT_EQ(error_of("rounds: 0\n"), "job.yaml:1: rounds: must be between 1 and 1000000, got 0");
  EXPECT_EQ(error_of("train:\n  lr: -1\n"), "job.yaml:2: train.lr: must be > 0, got -1");
  EXPECT_EQ(error_of("clients: {fraction_fit: 1.5}\n"),
            "job.yaml:1: clients.fraction_fit: must be > 0 and <= 1, got 1.5");
  EXPECT_EQ(error_of("clients:\n  count: 3\n  min_fit: 5\n"),
            "job.yaml:3: clients.min_fit: is 5 but clients.count is 3");
  EXPECT_EQ(error_of("train: {optimizer: rmsprop}\n"),
            "job.yaml:1: train.optimizer: must be one of sgd, adam, got 'rmsprop'");
  EXPECT_EQ(error_of("data: {dataset: csv}\n"), "job.yaml:1: data.path: is required when data.dataset is csv");
}

TEST(JobConfig, SyntaxErrorsNameTheLine) {
  const std::string e = error_of("rounds: 3\ntrain: {lr: 0.1\n");
  EXPECT_EQ(e.rfind("job.yaml:3: invalid YAML: ", 0), 0u) << e;
}

TEST(JobConfig, OverridesApplyAndAreBlamedOnTheFlag) {
  const JobSpec job = parse_job("train: {lr: 0.1}\ndata:\n  partition: iid\n", "job.yaml",
                                {"train.lr=0.01", "rounds=7", "data.partition.kind=shard",
                                 "strategy.accept_failures=false"});
  EXPECT_EQ(job.train.lr, 0.01);
  EXPECT_EQ(job.rounds, 7);
  EXPECT_EQ(job.data.partition.kind, "shard");
  EXPECT_FALSE(job.strategy.accept_failures);
  EXPECT_EQ(job.sources.at("train.lr"), "--set");
  EXPECT_EQ(error_of("", {"train.lr=fast"}), "--set: train.lr: expected a number, got 'fast'");
  EXPECT_EQ(error_of("", {"train.speed=1"}),
            "--set: unknown key 'train.speed' (known in train: epochs, batch_size, lr, optimizer, "
            "momentum, weight_decay)");
  EXPECT_EQ(error_of("", {"rounds"}), "--set rounds: expected key.path=value");
}

TEST(JobConfig, DuplicateKeysAreRefusedNamingBothLines) {
  EXPECT_EQ(error_of("name: a\nrounds: 1\nseed: 3\nrounds: 7\n"), "job.yaml:2 and job.yaml:4: duplicate key 'rounds'");
  // Nested, and two whole blocks: a --set must not land in one while the reader keeps the other.
  EXPECT_EQ(error_of("data:\n  limit_train: 10\n  limit_train: 20\n"),
            "job.yaml:2 and job.yaml:3: duplicate key 'data.limit_train'");
  EXPECT_EQ(error_of("data:\n  limit_train: 10\nrounds: 2\ndata:\n  limit_test: 5\n", {"data.limit_train=99"}),
            "job.yaml:1 and job.yaml:4: duplicate key 'data'");
  EXPECT_EQ(error_of("strategy:\n  name: fedprox\n  proximal_mu: 0.1\n  proximal_mu: 0.2\n"),
            "job.yaml:3 and job.yaml:4: duplicate key 'strategy.proximal_mu'");
  EXPECT_EQ(error_of("privacy:\n  dp: {mode: server_fixed, mode: client_fixed}\n"),
            "job.yaml:2 and job.yaml:2: duplicate key 'privacy.dp.mode'");
  // JSON job files go through the same reader.
  EXPECT_EQ(error_of("{\"rounds\": 1,\n \"clients\": {\"count\": 2},\n \"rounds\": 7}\n"),
            "job.yaml:1 and job.yaml:3: duplicate key 'rounds'");
  // The same key in different mappings is fine.
  const JobSpec job = parse_job("train: {lr: 0.1}\nstrategy: {name: fedadam, eta: 0.2}\n", "job.yaml");
  EXPECT_EQ(job.train.lr, 0.1);
}

TEST(JobConfig, DataClassesDeclareTheCsvClasses) {
  EXPECT_EQ(parse_job("data: {dataset: csv, path: a.csv, classes: 3}\n", "job.yaml").data.classes,
            (std::vector<std::string>{"0", "1", "2"}));
  const JobSpec named = parse_job("data: {dataset: csv, path: a.csv, classes: [no, yes]}\n", "job.yaml");
  EXPECT_EQ(named.data.classes, (std::vector<std::string>{"no", "yes"}));
  bool listed = false;
  for (const auto& [k, v] : flatten_job(named)) listed = listed || (k == "data.classes" && v == "no,yes");
  EXPECT_TRUE(listed);
  // Undeclared, it is not a key of the job (the digest of existing jobs stays).
  for (const auto& [k, v] : flatten_job(parse_job("", "job.yaml"))) EXPECT_NE(k, "data.classes");
  EXPECT_EQ(error_of("data: {dataset: csv, path: a.csv, classes: [no, no]}\n"),
            "job.yaml:1: data.classes: names class 'no' twice");
  EXPECT_EQ(error_of("data:\n  classes: 10\n"),
            "job.yaml:2: data.classes: only applies to csv data (fashion-mnist has its own 10 classes)");
}

TEST(JobConfig, VersioningExportIsAListOfFormats) {
  EXPECT_TRUE(parse_job("", "job.yaml").versioning.exports.empty());  // default: none
  EXPECT_EQ(parse_job("versioning:\n  export: [onnx, onnx-int8]\n", "job.yaml").versioning.exports,
            (std::vector<std::string>{"onnx", "onnx-int8"}));
  EXPECT_EQ(parse_job("versioning: {export: onnx}\n", "job.yaml").versioning.exports, (std::vector<std::string>{"onnx"}));
  EXPECT_TRUE(parse_job("versioning: {export: []}\n", "job.yaml").versioning.exports.empty());
  EXPECT_EQ(parse_job("", "job.yaml", {"versioning.export=[onnx]"}).versioning.exports,
            (std::vector<std::string>{"onnx"}));
  EXPECT_EQ(error_of("versioning:\n  export: [tflite]\n"),
            "job.yaml:2: versioning.export: must be one of onnx, onnx-int8, got 'tflite'");
  EXPECT_EQ(error_of("versioning:\n  export: [onnx, onnx]\n"), "job.yaml:2: versioning.export: names 'onnx' twice");
  EXPECT_EQ(error_of("versioning:\n  export: {onnx: 1}\n"),
            "job.yaml:2: versioning.export: expected a list of formats, got '{onnx: 1}'");
  // Operational: the digest of a job does not change with it.
  EXPECT_EQ(job_digest(parse_job("versioning: {export: [onnx]}\n", "job.yaml")), job_digest(parse_job("", "job.yaml")));
}

// versioning.artifact: a name dvc.yaml and GTO accept, else the key and line are named.
TEST(JobConfig, VersioningArtifactIsADvcArtifactName) {
  EXPECT_EQ(parse_job("", "job.yaml").versioning.artifact, "");  // default: the job's name
  EXPECT_EQ(parse_job("versioning:\n  artifact: fashion-mlp\n", "job.yaml").versioning.artifact, "fashion-mlp");
  EXPECT_EQ(error_of("versioning:\n  artifact: fedtrack/x\n"),
            "job.yaml:2: versioning.artifact: must be a DVC artifact name (letters, digits, '-' and '_', starting and "
            "ending with a letter or digit, at most 100 characters), got 'fedtrack/x'");
  EXPECT_NE(error_of("", {"versioning.artifact=-x"}).find("versioning.artifact: must be a DVC artifact name"),
            std::string::npos);
  EXPECT_EQ(job_digest(parse_job("versioning: {artifact: m}\n", "job.yaml")), job_digest(parse_job("", "job.yaml")));
}

TEST(JobConfig, MissingFileIsNotFound) {
  try {
    load_job("/nonexistent/job.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "/nonexistent/job.yaml: cannot read job file");
  }
}

TEST(JobConfig, FlattenListsEverySettingWithDottedKeys) {
  const auto flat = flatten_job(parse_job("train: {lr: 0.05}\n", "job.yaml"));
  std::map<std::string, std::string> m(flat.begin(), flat.end());
  EXPECT_EQ(m.size(), flat.size());  // no duplicates
  EXPECT_EQ(m.at("train.lr"), "0.05");
  EXPECT_EQ(m.at("data.partition.alpha"), "0.5");
  EXPECT_EQ(m.at("clients.count"), "10");
}

}  // namespace
}  // namespace fedtrack

namespace fedtrack {
namespace {

TEST(JobConfigStrategies, OptionsBelongToTheirStrategy) {
  const JobSpec adam = parse_job("strategy: {name: fedadam, eta: 0.05, tau: 0.001}\n", "job.yaml");
  EXPECT_EQ(adam.strategy.name, "fedadam");
  EXPECT_EQ(*adam.strategy.eta, 0.05);
  EXPECT_FALSE(adam.strategy.beta_1.has_value());  // Flower's default applies
  EXPECT_EQ(error_of("strategy: {name: fedavg, eta: 0.1}\n"),
            "job.yaml:1: strategy.eta: is not an option of strategy 'fedavg' (its options: none)");
  EXPECT_EQ(error_of("strategy:\n  name: fedadagrad\n  beta_1: 0.9\n"),
            "job.yaml:3: strategy.beta_1: is not an option of strategy 'fedadagrad' (its options: eta, eta_l, tau)");
  EXPECT_EQ(error_of("strategy: {name: fedprox}\n"), "job.yaml:1: strategy.proximal_mu: is required by fedprox");
  EXPECT_EQ(error_of("strategy: {name: fedtrimmedavg, beta: 0.5}\n"),
            "job.yaml:1: strategy.beta: must be >= 0 and <= 0.499999, got 0.5");
  // An unknown strategy name is not found (README: exit 3), not a malformed value.
  try {
    parse_job("strategy: {name: fedsgd}\n", "job.yaml");
    ADD_FAILURE() << "fedsgd was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()).rfind("job.yaml:1: strategy.name: must be one of ", 0), 0u) << e.what();
  }
  const auto flat = flatten_job(parse_job("strategy: {name: fedprox, proximal_mu: 0.01}\n", "job.yaml"));
  std::map<std::string, std::string> m(flat.begin(), flat.end());
  EXPECT_EQ(m.at("strategy.name"), "fedprox");
  EXPECT_EQ(m.at("strategy.proximal_mu"), "0.01");
  EXPECT_EQ(m.count("strategy.eta"), 0u);
  const JobSpec q = parse_job("strategy: {name: qfedavg, q: 0.5, client_learning_rate: 0.05}\n", "job.yaml");
  EXPECT_EQ(*q.strategy.q, 0.5);
  EXPECT_EQ(*q.strategy.client_learning_rate, 0.05);
}

}  // namespace
}  // namespace fedtrack

namespace fedtrack {
namespace {

TEST(JobConfigPrivacy, ReadsTheDpKeys) {
  const JobSpec off = parse_job("rounds: 2\n", "job.yaml");
  EXPECT_FALSE(off.privacy.enabled());
  const JobSpec fixed = parse_job(
      "privacy:\n  dp:\n    mode: server_fixed\n    noise_multiplier: 0.7\n    clipping_norm: 2.5\n    delta: 1.0e-6\n",
      "job.yaml");
  EXPECT_EQ(fixed.privacy.dp.mode, "server_fixed");
  EXPECT_EQ(fixed.privacy.dp.noise_multiplier, 0.7);
  EXPECT_EQ(fixed.privacy.dp.clipping_norm, 2.5);
  EXPECT_EQ(fixed.privacy.dp.delta, 1e-6);
  const JobSpec adaptive = parse_job(
      "clients: {count: 40}\nprivacy:\n  dp: {mode: client_adaptive, noise_multiplier: 1.0, "
      "target_clipped_quantile: 0.3, clip_norm_lr: 0.1}\n",
      "job.yaml");
  EXPECT_EQ(*adaptive.privacy.dp.target_clipped_quantile, 0.3);
  EXPECT_EQ(*adaptive.privacy.dp.clip_norm_lr, 0.1);
  EXPECT_FALSE(adaptive.privacy.dp.clipped_count_stddev.has_value());
  // --set works like every other key.
  const JobSpec set = parse_job("", "job.yaml", {"privacy.dp.mode=client_fixed", "privacy.dp.clipping_norm=0.5"});
  EXPECT_EQ(set.privacy.dp.mode, "client_fixed");
  EXPECT_EQ(set.privacy.dp.clipping_norm, 0.5);
}

TEST(JobConfigPrivacy, BadDpSettingsNameTheKey) {
  const std::string dp = "privacy:\n  dp:\n    mode: server_fixed\n";
  EXPECT_EQ(error_of(dp + "    noise_multiplier: 0\n"),
            "job.yaml:4: privacy.dp.noise_multiplier: must be > 0, got 0");
  EXPECT_EQ(error_of(dp + "    noise_multiplier: -1\n"),
            "job.yaml:4: privacy.dp.noise_multiplier: must be > 0, got -1");
  EXPECT_EQ(error_of(dp + "    clipping_norm: 0\n"), "job.yaml:4: privacy.dp.clipping_norm: must be > 0, got 0");
  EXPECT_EQ(error_of(dp + "    delta: 0\n"), "job.yaml:4: privacy.dp.delta: must be > 0 and <= 1, got 0");
  EXPECT_EQ(error_of(dp + "    delta: 1\n"), "job.yaml:4: privacy.dp.delta: must be < 1, got 1");
  EXPECT_EQ(error_of(dp + "    delta: 2\n"), "job.yaml:4: privacy.dp.delta: must be > 0 and <= 1, got 2");
  EXPECT_EQ(error_of(dp + "    noise_multiplier: lots\n"),
            "job.yaml:4: privacy.dp.noise_multiplier: expected a number, got 'lots'");
  EXPECT_EQ(error_of(dp + "    target_clipped_quantile: 0.5\n"),
            "job.yaml:4: privacy.dp.target_clipped_quantile: only applies to the adaptive modes "
            "(server_adaptive, client_adaptive), not server_fixed");
  EXPECT_EQ(error_of(dp + "    clip_norm_lr: 0.2\n"),
            "job.yaml:4: privacy.dp.clip_norm_lr: only applies to the adaptive modes "
            "(server_adaptive, client_adaptive), not server_fixed");
  EXPECT_EQ(error_of("privacy:\n  dp:\n    mode: local\n"),
            "job.yaml:3: privacy.dp.mode: must be one of server_fixed, server_adaptive, client_fixed, "
            "client_adaptive, got 'local'");
  EXPECT_EQ(error_of("privacy:\n  dp:\n    noise_multiplier: 1\n"),
            "job.yaml:3: privacy.dp.mode: is required (one of server_fixed, server_adaptive, client_fixed, "
            "client_adaptive)");
  EXPECT_EQ(error_of(dp + "    epsilon: 3\n").rfind("job.yaml:4: unknown key 'privacy.dp.epsilon'", 0), 0u);
  EXPECT_EQ(error_of("privacy:\n  ldp: {}\n"), "job.yaml:2: unknown key 'privacy.ldp' (known in privacy: dp)");
  // Adaptive: 10 sampled clients give a count stddev of 0.5, so sigma must stay below 1.
  EXPECT_EQ(error_of("privacy:\n  dp:\n    mode: server_adaptive\n    noise_multiplier: 1.0\n"),
            "job.yaml:4: privacy.dp.noise_multiplier: must be below 2 * clipped_count_stddev = 1 in adaptive "
            "modes, got 1 (clipped_count_stddev defaults to sampled clients / 20; set it higher)");
  EXPECT_EQ(error_of("privacy:\n  dp:\n    mode: server_adaptive\n    target_clipped_quantile: 1.5\n    "
                     "noise_multiplier: 0.5\n"),
            "job.yaml:4: privacy.dp.target_clipped_quantile: must be >= 0 and <= 1, got 1.5");
  EXPECT_EQ(error_of("privacy:\n  dp: {mode: server_fixed, delta: 1}\n", {}).rfind("job.yaml:2: privacy.dp.delta", 0),
            0u);
  EXPECT_EQ(error_of("", {"privacy.dp.mode=server_fixed", "privacy.dp.clipping_norm=-2"}),
            "--set: privacy.dp.clipping_norm: must be > 0, got -2");
}

TEST(JobConfigPrivacy, FlattenShowsDpOnlyWhenOn) {
  auto flat_of = [](const std::string& yaml) {
    const auto flat = flatten_job(parse_job(yaml, "job.yaml"));
    return std::map<std::string, std::string>(flat.begin(), flat.end());
  };
  EXPECT_EQ(flat_of("rounds: 2\n").count("privacy.dp.mode"), 0u);
  const auto m = flat_of("privacy:\n  dp: {mode: server_adaptive, noise_multiplier: 0.5, clip_norm_lr: 0.1}\n");
  EXPECT_EQ(m.at("privacy.dp.mode"), "server_adaptive");
  EXPECT_EQ(m.at("privacy.dp.noise_multiplier"), "0.5");
  EXPECT_EQ(m.at("privacy.dp.clipping_norm"), "1");
  EXPECT_EQ(m.at("privacy.dp.delta"), "1e-05");
  EXPECT_EQ(m.at("privacy.dp.clip_norm_lr"), "0.1");
  EXPECT_EQ(m.count("privacy.dp.target_clipped_quantile"), 0u);
}

TEST(JobConfigCompression, ReadsTheKeys) {
  const JobSpec job = parse_job("compression:\n  uplink: topk\n  downlink: int8\n  topk_fraction: 0.05\n"
                                "  error_feedback: false\n", "job.yaml");
  EXPECT_EQ(job.compression.uplink, "topk");
  EXPECT_EQ(job.compression.downlink, "int8");
  EXPECT_EQ(job.compression.topk_fraction, 0.05);
  EXPECT_FALSE(job.compression.error_feedback);
  EXPECT_TRUE(job.compression.enabled());
  const JobSpec off = parse_job("", "job.yaml");
  EXPECT_FALSE(off.compression.enabled());
  // Off, the keys are neither params nor digest: a job without compression keeps its digest.
  const auto flat = flatten_job(off);
  for (const auto& [key, value] : flat) EXPECT_NE(key.rfind("compression.", 0), 0u) << key;
  EXPECT_EQ(job_digest(parse_job("compression: {uplink: none, downlink: none}\n", "job.yaml")), job_digest(off));
  EXPECT_NE(job_digest(parse_job("compression: {uplink: int8}\n", "job.yaml")), job_digest(off));
}

TEST(JobConfigCompression, ConflictsNameBothKeys) {
  EXPECT_EQ(error_of("compression:\n  downlink: topk\n"),
            "job.yaml:2: compression.downlink: must be one of none, fp16, int8, got 'topk'");
  EXPECT_EQ(error_of("compression:\n  uplink: int8\n  topk_fraction: 0.1\n"),
            "job.yaml:3: compression.topk_fraction: only applies to compression.uplink: topk, not int8");
  EXPECT_EQ(error_of("compression:\n  uplink: topk\n  topk_fraction: 0\n"),
            "job.yaml:3: compression.topk_fraction: must be > 0 and <= 1, got 0");
  for (const char* robust : {"fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"}) {
    const std::string strategy = std::string("strategy: {name: ") + robust +
                                 (std::string(robust) == "multikrum" ? ", num_clients_to_keep: 3" : "") + "}\n";
    EXPECT_EQ(error_of(strategy + "compression:\n  uplink: topk\n"),
              "job.yaml:3: compression.uplink: topk conflicts with strategy.name " + std::string(robust) +
                  ": a robust aggregator compares whole updates, and top-k updates are mostly zeros (use uplink "
                  "fp16 or int8, or an averaging strategy)");
    EXPECT_NO_THROW(parse_job(strategy + "compression: {uplink: int8, downlink: fp16}\n", "job.yaml"));
  }
  EXPECT_EQ(error_of("", {"strategy.name=krum", "compression.uplink=topk"}).rfind("--set: compression.uplink: topk "
                                                                                "conflicts with strategy.name krum", 0),
            0u);
  EXPECT_NO_THROW(parse_job("strategy: fedadam\ncompression: {uplink: topk}\n", "job.yaml"));
}

}  // namespace
}  // namespace fedtrack

namespace fedtrack {
namespace {

TEST(JobConfigSecureAggregation, ReadsTheKeysAndListsThemOnlyWhenOn) {
  const JobSpec job = parse_job(
      "secure_aggregation:\n  mode: secaggplus\n  num_shares: 0.5\n  reconstruction_threshold: 0.5\n"
      "  clipping_range: 4.0\n  quantization_range: 1048576\n  modulus_range: 4294967296\n  max_weight: 500\n"
      "  timeout: 30\n",
      "job.yaml");
  EXPECT_TRUE(job.secure_aggregation.enabled());
  EXPECT_EQ(job.secure_aggregation.clipping_range, 4.0);
  EXPECT_EQ(job.secure_aggregation.quantization_range, 1048576);
  EXPECT_EQ(job.secure_aggregation.modulus_range, 4294967296LL);
  EXPECT_EQ(job.secure_aggregation.max_weight, 500.0);
  auto flat = flatten_job(job);
  std::map<std::string, std::string> m(flat.begin(), flat.end());
  EXPECT_EQ(m.at("secure_aggregation.mode"), "secaggplus");
  EXPECT_EQ(m.at("secure_aggregation.num_shares"), "0.5");
  EXPECT_EQ(m.at("secure_aggregation.modulus_range"), "4294967296");
  const auto off = flatten_job(parse_job("rounds: 2\n", "job.yaml"));
  for (const auto& [key, value] : off) EXPECT_EQ(key.rfind("secure_aggregation.", 0), std::string::npos) << key;
  // Off, the job's digest (and so its resume state) is what it was before these keys existed.
  EXPECT_EQ(job_digest(parse_job("rounds: 2\n", "job.yaml")),
            job_digest(parse_job("rounds: 2\nsecure_aggregation: {mode: none, clipping_range: 3}\n", "job.yaml")));
  EXPECT_NE(job_digest(parse_job("secure_aggregation: {mode: secaggplus}\n", "job.yaml")),
            job_digest(parse_job("secure_aggregation: {mode: secaggplus, clipping_range: 3}\n", "job.yaml")));
}

TEST(JobConfigSecureAggregation, BadSettingsNameTheKey) {
  const std::string on = "secure_aggregation:\n  mode: secaggplus\n";
  EXPECT_EQ(error_of(on + "  num_shares: 5\n  reconstruction_threshold: 6\n"),
            "job.yaml:4: secure_aggregation.reconstruction_threshold: is 6 but secure_aggregation.num_shares is 5; "
            "it must not exceed it");
  EXPECT_EQ(error_of(on + "  num_shares: 2.5\n"),
            "job.yaml:3: secure_aggregation.num_shares: must be a fraction in (0, 1] or an integer >= 3, got 2.5");
  EXPECT_EQ(error_of(on + "  modulus_range: 3000000000\n"),
            "job.yaml:3: secure_aggregation.modulus_range: must be a power of two greater than "
            "secure_aggregation.quantization_range (4194304), got 3000000000");
  EXPECT_EQ(error_of(on + "  modulus_range: 4194304\n"),
            "job.yaml:3: secure_aggregation.modulus_range: must be a power of two greater than "
            "secure_aggregation.quantization_range (4194304), got 4194304");
  EXPECT_EQ(error_of(on + "  modulus_range: 8589934592\n").rfind("job.yaml:3: secure_aggregation.modulus_range: must be", 0),
            0u);
  EXPECT_EQ(error_of("secure_aggregation: {mode: secagg}\n").rfind("job.yaml:1: secure_aggregation.mode: must be one of", 0),
            0u);
  // 10 clients x 2^30 reach 2^32.
  EXPECT_EQ(error_of(on + "  quantization_range: 1073741824\n"),
            "job.yaml:3: secure_aggregation.modulus_range: 4294967296 overflows with 10 sampled clients x "
            "secure_aggregation.quantization_range 1073741824; raise it or lower the range");
}

TEST(JobConfigSecureAggregation, ConflictsNameBothKeys) {
  const std::string on = "secure_aggregation:\n  mode: secaggplus\n";
  for (const char* robust : {"fedmedian", "krum", "bulyan", "qfedavg", "fedtrimmedavg"}) {
    const std::string message = error_of("strategy: " + std::string(robust) + "\n" + on);
    EXPECT_EQ(message.rfind("job.yaml:3: secure_aggregation.mode: secaggplus conflicts with job.yaml:1: "
                            "strategy.name: " + std::string(robust), 0),
              0u)
        << message;
  }
  EXPECT_EQ(error_of(on + "privacy:\n  dp: {mode: server_fixed}\n")
                .rfind("job.yaml:2: secure_aggregation.mode: secaggplus conflicts with job.yaml:4: privacy.dp.mode: "
                       "server_fixed", 0),
            0u);
  EXPECT_EQ(error_of("", {"secure_aggregation.mode=secaggplus", "privacy.dp.mode=server_adaptive",
                          "privacy.dp.noise_multiplier=0.5"})
                .rfind("--set: secure_aggregation.mode: secaggplus conflicts with --set: privacy.dp.mode", 0),
            0u);
  // Compression replaces the dense update the masks need: refused both ways, naming both keys.
  EXPECT_EQ(error_of(on + "compression:\n  uplink: topk\n")
                .rfind("job.yaml:2: secure_aggregation.mode: secaggplus conflicts with job.yaml:4: compression.uplink: topk", 0),
            0u)
      << error_of(on + "compression:\n  uplink: topk\n");
  EXPECT_EQ(error_of(on + "compression:\n  downlink: int8\n")
                .rfind("job.yaml:2: secure_aggregation.mode: secaggplus conflicts with job.yaml:4: compression.downlink: int8", 0),
            0u)
      << error_of(on + "compression:\n  downlink: int8\n");
  // What composes: every averaging strategy, client-side DP.
  for (const char* averaging : {"fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad"}) {
    std::string options = std::string(averaging) == "fedprox" ? ", proximal_mu: 0.1" : "";
    EXPECT_NO_THROW(parse_job("strategy: {name: " + std::string(averaging) + options + "}\n" + on +
                                  "privacy:\n  dp: {mode: client_fixed}\n",
                              "job.yaml"))
        << averaging;
  }
}

}  // namespace
}  // namespace fedtrack
