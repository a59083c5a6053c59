#include "fedtrack/connectors/job_schema.h"

#include <limits>
#include <sstream>

#include "fedtrack/core/records.h"
#include "fedtrack/core/strategy_registry.h"
#include "fedtrack/tracking/logged_models.h"

namespace fedtrack {
namespace {

constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
constexpr double kMax = std::numeric_limits<double>::max();

// "train.lr", [](JobSpec& j) -> double& { return j.train.lr; }: a key is
// spelled like the JobSpec member it binds.
#define FT_MEMBER(path) #path, [](JobSpec& j) -> decltype((j.path)) { return j.path; }
#define FT_BIND(path) #path, [](JobSpec& j) -> decltype((j.path)) { return j.path; }

JobKey base(std::string key, KeyBinding bind, KeyKind kind, std::string doc) {
  JobKey k;
  k.member = key;
  k.key = std::move(key);
  k.bind = std::move(bind);
  k.kind = kind;
  k.doc = std::move(doc);
  return k;
}

JobKey text(std::string key, KeyBinding bind, std::string doc) {
  return base(std::move(key), std::move(bind), KeyKind::kString, std::move(doc));
}

JobKey choice(std::string key, KeyBinding bind, std::vector<std::string> choices, std::string doc) {
  JobKey k = base(std::move(key), std::move(bind), KeyKind::kChoice, std::move(doc));
  k.choices = std::move(choices);
  return k;
}

// A key whose name is not its member's (`export` is a C++ keyword).
JobKey choice_list(std::string key, std::string member, KeyBinding bind, std::vector<std::string> choices,
                   std::string doc) {
  JobKey k = base(std::move(key), std::move(bind), KeyKind::kChoiceList, std::move(doc));
  k.member = std::move(member);
  k.choices = std::move(choices);
  return k;
}

JobKey integer(std::string key, KeyBinding bind, std::int64_t lo, std::int64_t hi, std::string doc) {
  JobKey k = base(std::move(key), std::move(bind), KeyKind::kInteger, std::move(doc));
  k.int_lo = lo;
  k.int_hi = hi;
  return k;
}

enum Bound { kClosed, kOpen };

JobKey number(std::string key, KeyBinding bind, Bound lo_bound, double lo, double hi, std::string doc) {
  JobKey k = base(std::move(key), std::move(bind), KeyKind::kNumber, std::move(doc));
  k.lo = lo;
  k.hi = hi;
  k.lo_open = lo_bound == kOpen;
  return k;
}

JobKey flag(std::string key, KeyBinding bind, std::string doc) {
  return base(std::move(key), std::move(bind), KeyKind::kBoolean, std::move(doc));
}

JobKey operational(JobKey k) {
  k.digest = InDigest::kNo;
  return k;
}

// attack.*: in the digest only when an attack is on.
JobKey attack_key(JobKey k) {
  k.digest = InDigest::kWhenAttacking;
  return k;
}

JobKey listed(Listed when, JobKey k) {
  k.listed = when;
  return k;
}

JobKey shown_default(std::string text, JobKey k) {
  k.default_doc = std::move(text);
  return k;
}

std::vector<JobKey> build_keys() {
  std::vector<JobKey> keys = {
      text(FT_MEMBER(name), "names the job; job ids are <name>-<UTC time>-<random>"),
      integer(FT_MEMBER(seed), 0, kMaxInt, "drives partitions, sampling, init, shuffles"),
      integer(FT_MEMBER(rounds), 1, 1000000, "federated rounds"),
      text(FT_MEMBER(model), "mlp | cnn | a name registered with register_model"),
      choice(FT_MEMBER(data.dataset), {"fashion-mnist", "mnist", "csv"}, "the training and test data"),
      shown_default("/usr/share/datasets/fashion-mnist for fashion-mnist",
                    text(FT_MEMBER(data.path), "IDX folder or CSV file (required for csv)")),
      text(FT_MEMBER(data.test_path), "csv: a separate test file (else data.test_fraction is held out)"),
      shown_default("the last column", text(FT_MEMBER(data.label), "csv: the label column")),
      listed(Listed::kWhenSet,
             shown_default("the training file's labels",
                           base(FT_MEMBER(data.classes), KeyKind::kClassList,
                                "csv: the declared classes ([no, yes], or a count N = \"0\"..\"N-1\"); a record "
                                "with another label is corruption"))),
      number(FT_MEMBER(data.test_fraction), kOpen, 0, 1, "csv without test_path: this fraction of rows held out (seeded)"),
      number(FT_MEMBER(data.val_fraction), kClosed, 0, 0.9, "each client's local hold-out for federated evaluation"),
      integer(FT_MEMBER(data.limit_train), 0, kMaxInt, "use only the first N training examples (0 = all)"),
      integer(FT_MEMBER(data.limit_test), 0, kMaxInt, "use only the first N test examples (0 = all)"),
      choice(FT_MEMBER(data.partition.kind), {"iid", "dirichlet", "shard"}, "how the training data is split across clients"),
      number(FT_MEMBER(data.partition.alpha), kOpen, 0, 1e6, "dirichlet: concentration; smaller = more label skew"),
      integer(FT_MEMBER(data.partition.min_partition_size), 0, kMaxInt,
              "dirichlet: redraw until every client has this many examples"),
      integer(FT_MEMBER(data.partition.classes_per_client), 1, 100000, "shard: label-sorted shards per client"),
      integer(FT_MEMBER(clients.count), 1, 100000, "virtual clients (simulation) or sites (deployment)"),
      number(FT_MEMBER(clients.fraction_fit), kOpen, 0, 1, "sampled per round: max(floor(count * fraction), min_fit)"),
      integer(FT_MEMBER(clients.min_fit), 1, kMaxInt, "at least this many fit per round (the default 2 shrinks to clients.count)"),
      number(FT_MEMBER(clients.fraction_evaluate), kClosed, 0, 1, "federated evaluation sample (0 = none)"),
      integer(FT_MEMBER(clients.min_evaluate), 0, kMaxInt, "at least this many evaluate (the default 2 shrinks to clients.count)"),
      integer(FT_MEMBER(clients.min_available), 1, kMaxInt, "clients that must be connected before a round (the default 2 shrinks to clients.count)"),
      integer(FT_MEMBER(train.epochs), 1, 10000, "local epochs per round"),
      integer(FT_MEMBER(train.batch_size), 1, 1 << 20, "local batch size"),
      number(FT_MEMBER(train.lr), kOpen, 0, kMax, "local learning rate"),
      choice(FT_MEMBER(train.optimizer), {"sgd", "adam"}, "local optimizer"),
      number(FT_MEMBER(train.momentum), kClosed, 0, 1, "sgd momentum"),
      number(FT_MEMBER(train.weight_decay), kClosed, 0, kMax, "L2 weight decay"),
      choice(FT_MEMBER(strategy.name), strategy_names(), "the aggregation strategy (options: see Strategies below)"),
      flag(FT_MEMBER(strategy.accept_failures), "a round goes on when some sampled clients fail"),
      flag(FT_MEMBER(evaluation.initial), "evaluate the initial model (reported as round 0 / \"initial\")"),
      flag(FT_MEMBER(evaluation.federated), "also evaluate on clients' local hold-outs each round"),
      integer(FT_MEMBER(evaluation.batch_size), 1, 1 << 24, "batch size of the server-side evaluation"),
      operational(integer(FT_MEMBER(runtime.parallelism), 0, 4096, "clients fitted at once; 0 = one per core")),
      operational(integer(FT_MEMBER(runtime.threads_per_client), 0, 4096,
                          "LibTorch intra-op threads per client; 0 = cores / parallelism")),
      operational(shown_default("\"\" = MLFLOW_TRACKING_URI, else journal only",
                                text(FT_MEMBER(tracking.uri), "MLflow server, http:// or https://"))),
      operational(shown_default("\"\" = MLFLOW_EXPERIMENT_NAME, else \"Default\"",
                                text(FT_MEMBER(tracking.experiment), "MLflow experiment"))),
      operational(text(FT_MEMBER(tracking.journal), "the local SQLite journal (relative to the current directory)")),
      operational(number(FT_MEMBER(tracking.timeout), kOpen, 0, 3600, "seconds any round may wait on MLflow")),
      operational(flag(FT_MEMBER(tracking.required),
                       "fail the job (exit 4 / 6) when MLflow is unreachable or refuses the credentials before round 1, "
                       "or writes are still pending at the end (--require-tracking)")),
      operational(choice(FT_MEMBER(tracking.log_models), log_models_choices(),
                         "rounds whose global model becomes an MLflow 3 LoggedModel (checkpoint uploaded, linked to the "
                         "job's run at step = round, with the round's metrics): final = the last round, once the job "
                         "finished; best = each round that beats every earlier one on eval_accuracy; every = each round")),
      operational(flag(FT_MEMBER(versioning.enabled), "commit every round's global model")),
      operational(text(FT_MEMBER(versioning.repo), "git + DVC repository folder (created on first use), or a git URL: cloned into .fedtrack/repos/, pushed every round")),
      operational(text(FT_MEMBER(versioning.path), "the model inside the repository (a relative path inside it)")),
      operational(shown_default("\"\" = the repository's default DVC remote, if any",
                                text(FT_MEMBER(versioning.remote),
                                     "DVC remote (a folder or s3://bucket/prefix) each round's object is pushed to "
                                     "before its commit, made the default remote"))),
      operational(flag(FT_MEMBER(versioning.push), "push each round's commit and tag to git remote origin")),
      operational(text(FT_MEMBER(versioning.author), "\"Name <email>\" used when git has no identity")),
      operational(shown_default("\"\" = the job's name",
                                text(FT_MEMBER(versioning.artifact),
                                     "the model's name in dvc.yaml's artifacts, so `dvc artifacts get`, GTO and "
                                     "`fedtrack promote` (its default --model-name) find it; letters, digits, - and _"))),
      operational(shown_default("`[]` (none)", choice_list("versioning.export", FT_BIND(versioning.exports), {"onnx", "onnx-int8"},
                                "formats committed beside the model every round, each its own DVC-tracked output and "
                                "dvc.yaml artifact: onnx -> <stem>.onnx, onnx-int8 -> <stem>.int8.onnx next to "
                                "versioning.path; a model that cannot export stops the job before round 1"))),
      attack_key(integer(FT_MEMBER(attack.clients), 0, 100000,
                         "the first N clients send global + scale * (honest update - global)")),
      attack_key(number(FT_MEMBER(attack.scale), kClosed, -1e6, 1e6,
                        "the attackers' scale; negative: sign-flipped, scaled updates")),
      listed(Listed::kWhenPrivacy,
             shown_default("\"\" = off", choice(FT_MEMBER(privacy.dp.mode), dp_mode_names(),
                                                "central differential privacy (required in a privacy.dp section)"))),
      listed(Listed::kWhenPrivacy, number(FT_MEMBER(privacy.dp.noise_multiplier), kOpen, 0, kMax, "sigma")),
      listed(Listed::kWhenPrivacy, number(FT_MEMBER(privacy.dp.clipping_norm), kOpen, 0, kMax,
                                          "clipping norm; the initial norm in adaptive modes")),
      listed(Listed::kWhenPrivacy, number(FT_MEMBER(privacy.dp.delta), kOpen, 0, 1,
                                          "dp_epsilon is reported at this delta, < 1")),
      listed(Listed::kWhenSet, shown_default("0.5 (Flower's)", number(FT_MEMBER(privacy.dp.target_clipped_quantile),
                                                                       kClosed, 0, 1, "adaptive modes only"))),
      listed(Listed::kWhenSet, shown_default("0.2 (Flower's)", number(FT_MEMBER(privacy.dp.clip_norm_lr), kOpen, 0,
                                                                       kMax, "adaptive modes only"))),
      listed(Listed::kWhenSet,
             shown_default("sampled clients / 20 (Flower's)",
                           number(FT_MEMBER(privacy.dp.clipped_count_stddev), kOpen, 0, kMax,
                                  "adaptive modes only; noise_multiplier must stay below twice this"))),
      listed(Listed::kWhenSecureAggregation,
             choice(FT_MEMBER(secure_aggregation.mode), {"none", "secaggplus"},
                    "secure aggregation: the server learns only the sum of the updates (docs/privacy.md)")),
      listed(Listed::kWhenSecureAggregation,
             number(FT_MEMBER(secure_aggregation.num_shares), kOpen, 0, 1e6,
                    "neighbours each client shares its secrets with, itself included: a count (integer >= 3) "
                    "or a fraction (0, 1] of the sampled clients")),
      listed(Listed::kWhenSecureAggregation,
             number(FT_MEMBER(secure_aggregation.reconstruction_threshold), kOpen, 0, 1e6,
                    "shares needed to rebuild a secret: a count (integer >= 2, <= num_shares) or a fraction "
                    "(0, 1] of num_shares")),
      listed(Listed::kWhenSecureAggregation,
             number(FT_MEMBER(secure_aggregation.clipping_range), kOpen, 0, 1e12,
                    "each weighted value is clipped to [-range, range] before quantization")),
      listed(Listed::kWhenSecureAggregation,
             integer(FT_MEMBER(secure_aggregation.quantization_range), 2, 1LL << 31,
                     "values are quantized stochastically into [0, range]")),
      listed(Listed::kWhenSecureAggregation,
             integer(FT_MEMBER(secure_aggregation.modulus_range), 4, 1LL << 32,
                     "masked sums are taken mod this power of two (> quantization_range, <= 2^32); sampled "
                     "clients x quantization_range must stay below it")),
      listed(Listed::kWhenSecureAggregation,
             number(FT_MEMBER(secure_aggregation.max_weight), kOpen, 0, 1e12,
                    "a client's weight is num_examples / max_weight (Flower's; its weighted values are clipped, so keep it near typical num_examples)")),
      listed(Listed::kWhenSecureAggregation,
             operational(number(FT_MEMBER(secure_aggregation.timeout), kOpen, 0, 1e7,
                                "seconds each protocol stage waits for replies (network runtime)"))),
      operational(number(FT_MEMBER(server.round_timeout), kClosed, 0, 1e7,
                         "seconds a sampled client may take for a fit (and for an evaluate); 0 = no limit")),
      operational(number(FT_MEMBER(server.client_timeout), kOpen, 0, 1e7,
                         "seconds of silence after which a connected client counts as gone")),
      operational(shown_default("\"\" = <name>.state.db in the current directory",
                                text(FT_MEMBER(server.state), "resume state file (fedtrack run uses it too)"))),
      operational(integer(FT_MEMBER(server.max_message_mb), 1, 1 << 20, "larger request bodies are refused with 413")),
      operational(number(FT_MEMBER(server.linger), kClosed, 0, 3600,
                         "at most this many seconds after the job until every connected client heard it ended")),
      // compression.*: params and digest only when compression is on (older jobs keep their digest).
      listed(Listed::kWhenCompressing,
             choice(FT_MEMBER(compression.uplink), {"none", "fp16", "int8", "topk"},
                    "what a client sends: its update (trained - received model), raw float32 when none and "
                    "compression is on, fp16, int8 (per-chunk scale, stochastic rounding) or topk")),
      listed(Listed::kWhenCompressing,
             choice(FT_MEMBER(compression.downlink), {"none", "fp16", "int8"},
                    "what the server broadcasts: the global model's values in fp16 or int8 (the server keeps "
                    "the exact model)")),
      listed(Listed::kWhenCompressing,
             number(FT_MEMBER(compression.topk_fraction), kOpen, 0, 1,
                    "uplink topk: share of each tensor's coordinates sent (largest magnitudes)")),
      listed(Listed::kWhenCompressing,
             flag(FT_MEMBER(compression.error_feedback),
                  "lossy uplink: each client keeps what it did not send and adds it to its next update")),
  };
  for (const auto& def : strategy_option_defs()) {
    const std::string key = std::string("strategy.") + def.key;
    KeyBinding bind;
    KeyKind kind = KeyKind::kNumber;
    if (auto d = std::get_if<std::optional<double> StrategySpec::*>(&def.member)) {
      auto member = *d;
      bind = std::function<std::optional<double>&(JobSpec&)>(
          [member](JobSpec& j) -> std::optional<double>& { return j.strategy.*member; });
    } else {
      auto member = std::get<std::optional<std::int64_t> StrategySpec::*>(def.member);
      bind = std::function<std::optional<std::int64_t>&(JobSpec&)>(
          [member](JobSpec& j) -> std::optional<std::int64_t>& { return j.strategy.*member; });
      kind = KeyKind::kInteger;
    }
    JobKey k = base(key, bind, kind, def.doc);
    k.lo = def.lo;
    k.hi = def.hi;
    k.lo_open = def.lo_open;
    // A double bound (DBL_MAX for "no limit") converted without overflow (casting one out of range is UB).
    const auto to_int = [](double v) {
      constexpr double kLimit = 9.2e18;  // below 2^63
      if (v >= kLimit) return std::numeric_limits<std::int64_t>::max();
      if (v <= -kLimit) return std::numeric_limits<std::int64_t>::min();
      return static_cast<std::int64_t>(v);
    };
    k.int_lo = to_int(def.lo);
    k.int_hi = to_int(def.hi);
    k.listed = Listed::kWhenSet;
    k.default_doc = "the strategy's (Flower's)";
    keys.push_back(std::move(k));
  }
  return keys;
}

#undef FT_MEMBER

}  // namespace

const std::vector<JobKey>& job_keys() {
  static const std::vector<JobKey> keys = build_keys();
  return keys;
}

const std::vector<JobSection>& job_sections() {
  static const std::vector<JobSection> sections = {
      {"data", "", "What the clients train on"},
      {"data.partition", "kind", "How the training data is split (or a bare kind: `partition: iid`)"},
      {"clients", "", "The federation and its sampling"},
      {"train", "", "Sent to every client as the round's fit config"},
      {"strategy", "name", "Flower's strategies (or a bare name: `strategy: fedavg`)"},
      {"evaluation", "", ""},
      {"runtime", "", ""},
      {"tracking", "", "MLflow"},
      {"versioning", "", "The model repository"},
      {"attack", "", "Robustness experiments only (simulation)"},
      {"privacy", "", ""},
      {"privacy.dp", "", "Central differential privacy; off unless the section is there"},
      {"secure_aggregation", "", "SecAgg+ (Bell et al. 2020), Flower's parameters; docs/privacy.md"},
      {"server", "", "The network server; `state` is used by `fedtrack run` too"},
      {"compression", "", "Update compression, both runtimes ([compression](compression.md))"},
  };
  return sections;
}

const JobKey* find_job_key(const std::string& key) {
  for (const auto& k : job_keys()) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

const JobSection* find_job_section(const std::string& path) {
  for (const auto& s : job_sections()) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

std::string job_key_text(const JobKey& row, const JobSpec& job) {
  // The accessors take JobSpec& to bind for writing; reading never writes.
  JobSpec& j = const_cast<JobSpec&>(job);
  return std::visit(
      [&](const auto& get) -> std::string {
        const auto& value = get(j);
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return value;
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          return std::to_string(value);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string list;
          for (const auto& c : value) list += (list.empty() ? "" : ",") + c;
          return list;
        } else if constexpr (std::is_same_v<T, std::optional<double>> || std::is_same_v<T, std::optional<std::int64_t>>) {
          return value ? scalar_to_string(*value) : "";
        } else {
          return scalar_to_string(value);
        }
      },
      row.bind);
}

bool job_key_listed(const JobKey& row, const JobSpec& job) {
  switch (row.listed) {
    case Listed::kAlways:
      return true;
    case Listed::kWhenPrivacy:
      return job.privacy.enabled();
    case Listed::kWhenSecureAggregation:
      return job.secure_aggregation.enabled();
    case Listed::kWhenCompressing:
      return job.compression.enabled();
    case Listed::kWhenSet:
      break;
  }
  JobSpec& j = const_cast<JobSpec&>(job);
  return std::visit(
      [&](const auto& get) -> bool {
        const auto& value = get(j);
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::optional<double>> || std::is_same_v<T, std::optional<std::int64_t>>) {
          return value.has_value();
        } else if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::string>) {
          return !value.empty();
        } else {
          return true;
        }
      },
      row.bind);
}

namespace {

std::string range_doc(const JobKey& k) {
  std::ostringstream out;
  switch (k.kind) {
    case KeyKind::kString:
      return "text";
    case KeyKind::kChoice: {
      std::string list;
      for (const auto& c : k.choices) list += (list.empty() ? "`" : " \\| `") + c + "`";
      return list;
    }
    case KeyKind::kInteger:
      if (k.int_hi == kMaxInt) return "integer ≥ " + std::to_string(k.int_lo);
      return "integer " + std::to_string(k.int_lo) + "..." + std::to_string(k.int_hi);
    case KeyKind::kNumber:
      out << "number " << (k.lo_open ? "> " : "≥ ") << scalar_to_string(k.lo);
      if (k.hi < kMax) out << ", ≤ " << scalar_to_string(k.hi);
      return out.str();
    case KeyKind::kBoolean:
      return "true \\| false";
    case KeyKind::kClassList:
      return "list of names, or a count";
    case KeyKind::kChoiceList: {
      std::string list;
      for (const auto& c : k.choices) list += (list.empty() ? "`" : " \\| `") + c + "`";
      return "list of " + list;
    }
  }
  return "";
}

std::string default_doc(const JobKey& k, const JobSpec& defaults) {
  const std::string value = job_key_text(k, defaults);
  if (!k.default_doc.empty()) {
    return value.empty() || k.listed == Listed::kWhenSet ? k.default_doc : "`" + value + "` (" + k.default_doc + ")";
  }
  return value.empty() ? "`\"\"`" : "`" + value + "`";
}

std::string digest_doc(const JobKey& k) {
  switch (k.digest) {
    case InDigest::kYes:
      if (k.listed == Listed::kWhenPrivacy) return "yes, when DP is on";
      if (k.listed == Listed::kWhenSecureAggregation) return "yes, when secure aggregation is on";
      if (k.listed == Listed::kWhenCompressing) return "yes, when compression is on";
      return k.listed == Listed::kAlways ? "yes" : "yes, when set";
    case InDigest::kNo:
      return "no (operational)";
    case InDigest::kWhenAttacking:
      return "when attack.clients > 0";
  }
  return "";
}

std::string escape_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string job_file_markdown() {
  const JobSpec defaults;
  std::ostringstream md;
  md << "<!-- Generated from the job schema (connectors/src/job_schema.cpp) by\n"
        "     `cmake --build build --target job-file-doc`. Do not edit: a test fails\n"
        "     when this file differs from what the schema generates. -->\n"
        "# Job file reference\n\n"
        "Every key a job file (YAML; JSON is YAML) may set, also with `--set key=value`.\n"
        "A key that is not here, a value of the wrong type or out of range stops the job\n"
        "with status 2, naming the file, line and key. Every listed key is logged as an\n"
        "MLflow param of the job's parent run (keys marked \"when set\" only when the job\n"
        "sets them; `privacy.dp.*` only when differential privacy is on). Keys \"in the\n"
        "digest\" decide whether a resume state belongs to the job: changing one of them\n"
        "makes `--resume` refuse the state file; operational keys may change.\n";
  std::string section = "-";
  for (const auto& k : job_keys()) {
    const auto dot = k.key.rfind('.');
    std::string path = dot == std::string::npos ? "" : k.key.substr(0, dot);
    if (path == "strategy" && k.listed == Listed::kWhenSet) path = "strategy options";
    if (path != section) {
      section = path;
      const bool named = !path.empty() && path != "strategy options";
      md << "\n## " << (named ? "`" + path + "`" : path.empty() ? std::string("Top level") : std::string("Strategy options"))
         << "\n\n";
      if (const JobSection* s = find_job_section(path); s != nullptr && !s->doc.empty()) md << s->doc << ".\n\n";
      if (path == "strategy options") {
        md << "Each belongs to the strategies listed under Strategies; another strategy's option is an error.\n\n";
      }
      md << "| key | type | default | in digest | description |\n|---|---|---|---|---|\n";
    }
    md << "| `" << k.key << "` | " << range_doc(k) << " | " << escape_cell(default_doc(k, defaults)) << " | "
       << digest_doc(k) << " | " << escape_cell(k.doc) << " |\n";
  }
  md << "\n## Strategies\n\n"
        "`strategy.name` with its options and Flower's defaults (required: no default).\n\n"
        "| name | options (default) | what it does |\n|---|---|---|\n";
  for (const auto& info : strategy_registry()) {
    std::string options;
    for (const auto& o : info.options) {
      options += (options.empty() ? "" : ", ") + std::string("`") + o.key + "` (" +
                 (o.flower_default ? scalar_to_string(*o.flower_default) : std::string("required")) + ")";
    }
    md << "| `" << info.name << "` | " << (options.empty() ? "—" : options) << " | " << escape_cell(info.summary)
       << " |\n";
  }
  return md.str();
}

}  // namespace fedtrack
