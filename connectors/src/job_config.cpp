#include "fedtrack/connectors/job_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <limits>
#include <set>
#include <sstream>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/records.h"

namespace fedtrack {
namespace {

// Walks the YAML tree, checking each key against what fedtrack knows and
// recording where each came from.
class JobReader {
 public:
  JobReader(std::string source, std::set<std::string> overridden, JobSpec& job)
      : source_(std::move(source)), overridden_(std::move(overridden)), job_(job) {}

  // The location prefix for a key: "job.yaml:7: ", or "--set: " for a key
  // that a command-line override set.
  std::string where(const YAML::Node& node, const std::string& key) const {
    for (const auto& path : overridden_) {
      if (key == path || key.rfind(path + ".", 0) == 0) return "--set: ";
    }
    const auto mark = node.Mark();
    if (mark.is_null()) return source_ + ": ";
    return source_ + ":" + std::to_string(mark.line + 1) + ": ";
  }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& problem) const {
    throw Error::invalid_argument(where(node, key) + key + ": " + problem);
  }

  // Checks that `node` is a map whose keys are all in `known`; returns key -> value.
  std::map<std::string, YAML::Node> section(const YAML::Node& node, const std::string& prefix,
                                            const std::vector<std::string>& known) {
    std::map<std::string, YAML::Node> out;
    if (!node.IsMap()) fail(node, prefix.empty() ? "job" : prefix, "expected a mapping of keys");
    for (const auto& item : node) {
      const std::string key = item.first.Scalar();
      const std::string full = prefix.empty() ? key : prefix + "." + key;
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        throw Error::invalid_argument(where(item.first, full) + "unknown key '" + full + "' (known" +
                                      (prefix.empty() ? "" : " in " + prefix) + ": " + list + ")");
      }
      out[key] = item.second;
      job_.sources[full] = location(item.first, full);
    }
    return out;
  }

  static const YAML::Node& node_of(const YAML::Node& n) { return n; }

  std::string location(const YAML::Node& node, const std::string& key) const {
    std::string w = where(node, key);
    return w.substr(0, w.size() - 2);
  }

  static std::string text(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (node.IsNull()) return "null";
    std::ostringstream s;
    s << YAML::Dump(node);
    std::string out = s.str();
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
  }

  std::int64_t integer(const YAML::Node& node, const std::string& key, std::int64_t lo, std::int64_t hi) {
    std::int64_t value = 0;
    if (!node.IsScalar() || !YAML::convert<std::int64_t>::decode(node, value)) {
      fail(node, key, "expected an integer, got '" + text(node) + "'");
    }
    if (value < lo || value > hi) {
      fail(node, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                          ", got " + std::to_string(value));
    }
    return value;
  }

  // A finite number in [lo, hi] (or (lo, hi] when lo_open).
  double number(const YAML::Node& node, const std::string& key, double lo, double hi, bool lo_open) {
    double value = 0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, value) || !std::isfinite(value)) {
      fail(node, key, "expected a number, got '" + text(node) + "'");
    }
    if ((lo_open ? value <= lo : value < lo) || value > hi) {
      std::ostringstream range;
      range << (lo_open ? "> " : ">= ") << scalar_to_string(lo);
      if (hi < std::numeric_limits<double>::max()) range << " and <= " << scalar_to_string(hi);
      fail(node, key, "must be " + range.str() + ", got " + scalar_to_string(value));
    }
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& key) {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(node, key, "expected true or false, got '" + text(node) + "'");
    }
    return value;
  }

  // A name outside `allowed` fails with `unknown` (kNotFound for names of
  // things: a strategy, a dataset; README: exit 3).
  std::string string(const YAML::Node& node, const std::string& key,
                     const std::vector<std::string>& allowed = {},
                     ErrorCode unknown = ErrorCode::kInvalidArgument) {
    if (!node.IsScalar()) fail(node, key, "expected a string, got '" + text(node) + "'");
    const std::string value = node.Scalar();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(unknown, where(node, key) + key + ": must be one of " + list + ", got '" + value + "'");
    }
    if (allowed.empty() && value.empty()) fail(node, key, "must not be empty");
    return value;
  }

  void read(const YAML::Node& root) {
    constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
    constexpr double kMax = std::numeric_limits<double>::max();
    if (root.IsNull()) return;
    auto top = section(root, "", {"name", "seed", "rounds", "model", "data", "clients", "train",
                                  "strategy", "evaluation", "runtime", "tracking", "versioning", "attack",
                                  "privacy", "server"});
    if (top.count("name")) job_.name = string(top["name"], "name");
    if (top.count("seed")) job_.seed = static_cast<std::uint64_t>(integer(top["seed"], "seed", 0, kMaxInt));
    if (top.count("rounds")) job_.rounds = integer(top["rounds"], "rounds", 1, 1000000);
    if (top.count("model")) job_.model = string(top["model"], "model");
    if (top.count("data")) read_data(top["data"]);
    if (top.count("clients")) {
      auto c = section(top["clients"], "clients",
                       {"count", "fraction_fit", "min_fit", "fraction_evaluate", "min_evaluate", "min_available"});
      auto& s = job_.clients;
      if (c.count("count")) s.count = integer(c["count"], "clients.count", 1, 100000);
      if (c.count("fraction_fit")) s.fraction_fit = number(c["fraction_fit"], "clients.fraction_fit", 0, 1, true);
      if (c.count("min_fit")) s.min_fit = integer(c["min_fit"], "clients.min_fit", 1, kMaxInt);
      if (c.count("fraction_evaluate")) {
        s.fraction_evaluate = number(c["fraction_evaluate"], "clients.fraction_evaluate", 0, 1, false);
      }
      if (c.count("min_evaluate")) s.min_evaluate = integer(c["min_evaluate"], "clients.min_evaluate", 0, kMaxInt);
      if (c.count("min_available")) s.min_available = integer(c["min_available"], "clients.min_available", 1, kMaxInt);
      // Defaults of 2 shrink to fit a smaller federation; explicit values must fit.
      auto fits = [&](const char* key, std::int64_t value) {
        if (value > s.count) {
          fail(c[key], std::string("clients.") + key,
               "is " + std::to_string(value) + " but clients.count is " + std::to_string(s.count));
        }
      };
      if (c.count("min_fit")) fits("min_fit", s.min_fit); else s.min_fit = std::min(s.min_fit, s.count);
      if (c.count("min_evaluate")) fits("min_evaluate", s.min_evaluate); else s.min_evaluate = std::min(s.min_evaluate, s.count);
      if (c.count("min_available")) fits("min_available", s.min_available); else s.min_available = std::min(s.min_available, s.count);
    }
    if (top.count("train")) {
      auto t = section(top["train"], "train", {"epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay"});
      auto& s = job_.train;
      if (t.count("epochs")) s.epochs = integer(t["epochs"], "train.epochs", 1, 10000);
      if (t.count("batch_size")) s.batch_size = integer(t["batch_size"], "train.batch_size", 1, 1 << 20);
      if (t.count("lr")) s.lr = number(t["lr"], "train.lr", 0, kMax, true);
      if (t.count("optimizer")) s.optimizer = string(t["optimizer"], "train.optimizer", {"sgd", "adam"});
      if (t.count("momentum")) s.momentum = number(t["momentum"], "train.momentum", 0, 1, false);
      if (t.count("weight_decay")) s.weight_decay = number(t["weight_decay"], "train.weight_decay", 0, kMax, false);
    }
    if (top.count("strategy")) read_strategy(top["strategy"]);
    if (top.count("evaluation")) {
      auto e = section(top["evaluation"], "evaluation", {"initial", "federated", "batch_size"});
      if (e.count("initial")) job_.evaluation.initial = boolean(e["initial"], "evaluation.initial");
      if (e.count("federated")) job_.evaluation.federated = boolean(e["federated"], "evaluation.federated");
      if (e.count("batch_size")) job_.evaluation.batch_size = integer(e["batch_size"], "evaluation.batch_size", 1, 1 << 24);
    }
    if (top.count("tracking")) {
      auto t = section(top["tracking"], "tracking", {"uri", "experiment", "journal", "timeout"});
      auto& s = job_.tracking;
      if (t.count("uri")) s.uri = string(t["uri"], "tracking.uri");
      if (t.count("experiment")) s.experiment = string(t["experiment"], "tracking.experiment");
      if (t.count("journal")) s.journal = string(t["journal"], "tracking.journal");
      if (t.count("timeout")) s.timeout = number(t["timeout"], "tracking.timeout", 0, 3600, true);
      if (!s.uri.empty() && s.uri.rfind("http://", 0) != 0 && s.uri.rfind("https://", 0) != 0) {
        fail(t["uri"], "tracking.uri", "must be an http:// or https:// MLflow server, got '" + s.uri + "'");
      }
    }
    if (top.count("versioning")) {
      auto v = section(top["versioning"], "versioning", {"enabled", "repo", "path", "remote", "push", "author"});
      auto& s = job_.versioning;
      if (v.count("enabled")) s.enabled = boolean(v["enabled"], "versioning.enabled");
      if (v.count("repo")) s.repo = string(v["repo"], "versioning.repo");
      if (v.count("path")) s.path = string(v["path"], "versioning.path");
      if (v.count("remote")) s.remote = string(v["remote"], "versioning.remote");
      if (v.count("push")) s.push = boolean(v["push"], "versioning.push");
      if (v.count("author")) {
        s.author = string(v["author"], "versioning.author");
        if (s.author.find('<') == std::string::npos || s.author.back() != '>') {
          fail(v["author"], "versioning.author", "must look like 'Name <email>', got '" + s.author + "'");
        }
      }
      if (s.path.front() == '/' || s.path.find("..") != std::string::npos) {
        fail(v.count("path") ? v["path"] : node_of(top["versioning"]), "versioning.path",
             "must be a path inside the repository, got '" + s.path + "'");
      }
    }
    if (top.count("attack")) {
      auto a = section(top["attack"], "attack", {"clients", "scale"});
      if (a.count("clients")) job_.attack.clients = integer(a["clients"], "attack.clients", 0, 100000);
      if (a.count("scale")) job_.attack.scale = number(a["scale"], "attack.scale", -1e6, 1e6, false);
      if (job_.attack.clients > job_.clients.count) {
        fail(a["clients"], "attack.clients", "is " + std::to_string(job_.attack.clients) + " but clients.count is " +
                                                 std::to_string(job_.clients.count));
      }
    }
    if (top.count("privacy")) read_privacy(top["privacy"]);
    if (top.count("server")) {
      auto v = section(top["server"], "server",
                       {"round_timeout", "client_timeout", "state", "max_message_mb", "linger"});
      auto& sv = job_.server;
      if (v.count("round_timeout")) sv.round_timeout = number(v["round_timeout"], "server.round_timeout", 0, 1e7, false);
      if (v.count("client_timeout")) {
        sv.client_timeout = number(v["client_timeout"], "server.client_timeout", 0, 1e7, true);
      }
      if (v.count("state")) sv.state = string(v["state"], "server.state");
      if (v.count("max_message_mb")) sv.max_message_mb = integer(v["max_message_mb"], "server.max_message_mb", 1, 1 << 20);
      if (v.count("linger")) sv.linger = number(v["linger"], "server.linger", 0, 3600, false);
    }
    if (top.count("runtime")) {
      auto r = section(top["runtime"], "runtime", {"parallelism", "threads_per_client"});
      if (r.count("parallelism")) job_.runtime.parallelism = integer(r["parallelism"], "runtime.parallelism", 0, 4096);
      if (r.count("threads_per_client")) {
        job_.runtime.threads_per_client = integer(r["threads_per_client"], "runtime.threads_per_client", 0, 4096);
      }
    }
  }

  void read_privacy(const YAML::Node& node) {
    auto p = section(node, "privacy", {"dp"});
    if (!p.count("dp")) return;
    auto d = section(p["dp"], "privacy.dp",
                     {"mode", "noise_multiplier", "clipping_norm", "target_clipped_quantile", "clip_norm_lr",
                      "clipped_count_stddev", "delta"});
    DpSpec& dp = job_.privacy.dp;
    if (!d.count("mode")) fail(p["dp"], "privacy.dp.mode", "is required (one of " + join(dp_mode_names()) + ")");
    dp.mode = string(d["mode"], "privacy.dp.mode", dp_mode_names());
    constexpr double kMax = std::numeric_limits<double>::max();
    if (d.count("noise_multiplier")) {
      dp.noise_multiplier = number(d["noise_multiplier"], "privacy.dp.noise_multiplier", 0, kMax, true);
    }
    if (d.count("clipping_norm")) dp.clipping_norm = number(d["clipping_norm"], "privacy.dp.clipping_norm", 0, kMax, true);
    if (d.count("delta")) {
      dp.delta = number(d["delta"], "privacy.dp.delta", 0, 1, true);
      if (dp.delta >= 1) fail(d["delta"], "privacy.dp.delta", "must be < 1, got " + scalar_to_string(dp.delta));
    }
    const bool adaptive = dp.mode == "server_adaptive" || dp.mode == "client_adaptive";
    for (const char* key : {"target_clipped_quantile", "clip_norm_lr", "clipped_count_stddev"}) {
      if (d.count(key) && !adaptive) {
        fail(d[key], std::string("privacy.dp.") + key,
             "only applies to the adaptive modes (server_adaptive, client_adaptive), not " + dp.mode);
      }
    }
    if (d.count("target_clipped_quantile")) {
      dp.target_clipped_quantile = number(d["target_clipped_quantile"], "privacy.dp.target_clipped_quantile", 0, 1, false);
    }
    if (d.count("clip_norm_lr")) dp.clip_norm_lr = number(d["clip_norm_lr"], "privacy.dp.clip_norm_lr", 0, kMax, true);
    if (d.count("clipped_count_stddev")) {
      dp.clipped_count_stddev = number(d["clipped_count_stddev"], "privacy.dp.clipped_count_stddev", 0, kMax, true);
    }
    if (adaptive) {
      // Part of sigma pays for the noisy clipped count; it must leave some for the model.
      const double sampled = static_cast<double>(clients_to_sample(
          static_cast<std::size_t>(job_.clients.count), job_.clients.fraction_fit,
          static_cast<std::size_t>(job_.clients.min_fit)));
      const double count_stddev = dp.clipped_count_stddev.value_or(sampled / 20);
      if (dp.noise_multiplier >= 2 * count_stddev) {
        fail(d.count("noise_multiplier") ? d["noise_multiplier"] : d["mode"], "privacy.dp.noise_multiplier",
             "must be below 2 * clipped_count_stddev = " + scalar_to_string(2 * count_stddev) +
                 " in adaptive modes, got " + scalar_to_string(dp.noise_multiplier) +
                 (dp.clipped_count_stddev ? "" : " (clipped_count_stddev defaults to sampled clients / 20; set it higher)"));
      }
    }
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  }

  void read_strategy(const YAML::Node& node) {
    auto& st = job_.strategy;
    if (node.IsScalar()) {
      st.name = string(node, "strategy");
      job_.sources["strategy.name"] = job_.sources["strategy"];
      return;
    }
    // Each strategy's own options, with Flower's names.
    static const std::map<std::string, std::vector<std::string>> options = {
        {"fedavg", {}},
        {"fedprox", {"proximal_mu"}},
        {"fedavgm", {"server_learning_rate", "server_momentum"}},
        {"fedadam", {"eta", "eta_l", "beta_1", "beta_2", "tau"}},
        {"fedyogi", {"eta", "eta_l", "beta_1", "beta_2", "tau"}},
        {"fedadagrad", {"eta", "eta_l", "tau"}},
        {"fedmedian", {}},
        {"fedtrimmedavg", {"beta"}},
        {"krum", {"num_malicious_clients"}},
        {"multikrum", {"num_malicious_clients", "num_clients_to_keep"}},
        {"bulyan", {"num_malicious_clients"}},
        {"qfedavg", {"q", "client_learning_rate"}},
    };
    std::vector<std::string> all = {"name", "accept_failures"};
    for (const auto& [n, opts] : options) {
      for (const auto& o : opts) {
        if (std::find(all.begin(), all.end(), o) == all.end()) all.push_back(o);
      }
    }
    auto m = section(node, "strategy", all);
    std::vector<std::string> names;
    for (const auto& [n, opts] : options) names.push_back(n);
    if (m.count("name")) st.name = string(m["name"], "strategy.name", names, ErrorCode::kNotFound);
    if (m.count("accept_failures")) st.accept_failures = boolean(m["accept_failures"], "strategy.accept_failures");
    const auto& allowed = options.at(st.name);
    for (const auto& [key, value] : m) {
      if (key == "name" || key == "accept_failures") continue;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(value, "strategy." + key,
             "is not an option of strategy '" + st.name + "' (its options: " + (list.empty() ? "none" : list) + ")");
      }
    }
    constexpr double kMax = std::numeric_limits<double>::max();
    auto num = [&](const char* key, double lo, double hi, bool lo_open) -> std::optional<double> {
      if (!m.count(key)) return std::nullopt;
      return number(m[key], std::string("strategy.") + key, lo, hi, lo_open);
    };
    st.proximal_mu = num("proximal_mu", 0, kMax, false);
    st.server_learning_rate = num("server_learning_rate", 0, kMax, true);
    st.server_momentum = num("server_momentum", 0, 1, false);
    st.eta = num("eta", 0, kMax, true);
    st.eta_l = num("eta_l", 0, kMax, true);
    st.beta_1 = num("beta_1", 0, 0.999999, false);
    st.beta_2 = num("beta_2", 0, 0.999999, false);
    st.tau = num("tau", 0, kMax, true);
    st.beta = num("beta", 0, 0.499999, false);
    st.q = num("q", 0, kMax, false);
    st.client_learning_rate = num("client_learning_rate", 0, kMax, true);
    if (m.count("num_malicious_clients")) {
      st.num_malicious_clients = integer(m["num_malicious_clients"], "strategy.num_malicious_clients", 0, 100000);
    }
    if (m.count("num_clients_to_keep")) {
      st.num_clients_to_keep = integer(m["num_clients_to_keep"], "strategy.num_clients_to_keep", 1, 100000);
    }
    if (st.name == "fedprox" && !st.proximal_mu) fail(node, "strategy.proximal_mu", "is required by fedprox");
    if (st.name == "multikrum" && !st.num_clients_to_keep) {
      fail(node, "strategy.num_clients_to_keep", "is required by multikrum");
    }
  }

  void read_data(const YAML::Node& node) {
    constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
    auto d = section(node, "data", {"dataset", "path", "test_path", "label", "classes", "test_fraction",
                                    "val_fraction", "limit_train", "limit_test", "partition"});
    auto& s = job_.data;
    if (d.count("dataset")) s.dataset = string(d["dataset"], "data.dataset", {"fashion-mnist", "mnist", "csv"}, ErrorCode::kNotFound);
    if (d.count("path")) s.path = string(d["path"], "data.path");
    if (d.count("test_path")) s.test_path = string(d["test_path"], "data.test_path");
    if (d.count("label")) s.label = string(d["label"], "data.label");
    if (d.count("classes")) {
      const YAML::Node& c = d["classes"];
      s.classes.clear();
      if (c.IsScalar()) {
        const std::int64_t n = integer(c, "data.classes", 1, 100000);
        for (std::int64_t k = 0; k < n; ++k) s.classes.push_back(std::to_string(k));
      } else if (c.IsSequence() && c.size() > 0) {
        for (std::size_t i = 0; i < c.size(); ++i) {
          const std::string name = string(c[i], "data.classes");
          if (std::find(s.classes.begin(), s.classes.end(), name) != s.classes.end()) {
            fail(c[i], "data.classes", "names class '" + name + "' twice");
          }
          s.classes.push_back(name);
        }
      } else {
        fail(c, "data.classes", "expected a number of classes or a list of class names, got '" + text(c) + "'");
      }
      if (s.dataset != "csv") {
        fail(c, "data.classes", "only applies to csv data (" + s.dataset + " has its own 10 classes)");
      }
    }
    if (d.count("test_fraction")) s.test_fraction = number(d["test_fraction"], "data.test_fraction", 0, 1, true);
    if (d.count("val_fraction")) s.val_fraction = number(d["val_fraction"], "data.val_fraction", 0, 0.9, false);
    if (d.count("limit_train")) s.limit_train = integer(d["limit_train"], "data.limit_train", 0, kMaxInt);
    if (d.count("limit_test")) s.limit_test = integer(d["limit_test"], "data.limit_test", 0, kMaxInt);
    if (s.dataset == "csv" && s.path.empty()) {
      fail(node, "data.path", "is required when data.dataset is csv");
    }
    if (d.count("partition")) {
      const YAML::Node& p = d["partition"];
      auto& ps = s.partition;
      if (p.IsScalar()) {
        ps.kind = string(p, "data.partition", {"iid", "dirichlet", "shard"});
      } else {
        auto m = section(p, "data.partition", {"kind", "alpha", "min_partition_size", "classes_per_client"});
        if (m.count("kind")) ps.kind = string(m["kind"], "data.partition.kind", {"iid", "dirichlet", "shard"});
        if (m.count("alpha")) ps.alpha = number(m["alpha"], "data.partition.alpha", 0, 1e6, true);
        if (m.count("min_partition_size")) {
          ps.min_partition_size = integer(m["min_partition_size"], "data.partition.min_partition_size", 0, kMaxInt);
        }
        if (m.count("classes_per_client")) {
          ps.classes_per_client = integer(m["classes_per_client"], "data.partition.classes_per_client", 1, 100000);
        }
      }
    }
  }

 private:
  std::string source_;
  std::set<std::string> overridden_;
  JobSpec& job_;
};

// yaml-cpp keeps every pair of a mapping, but a lookup finds the first and
// the reader's walk keeps the last: a key given twice (at any depth, also in
// a JSON job file) is refused, naming both lines, before anything reads it.
void refuse_duplicate_keys(const YAML::Node& node, const std::string& prefix, const std::string& source) {
  if (node.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& item : node) {
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : YAML::Dump(item.first);
      const std::string full = prefix.empty() ? key : prefix + "." + key;
      const YAML::Mark mark = item.first.Mark();
      auto [at, fresh] = seen.emplace(key, mark);
      if (!fresh) {
        auto line = [&](const YAML::Mark& m) {
          return m.is_null() ? source : source + ":" + std::to_string(m.line + 1);
        };
        throw Error::invalid_argument(line(at->second) + " and " + line(mark) + ": duplicate key '" + full + "'");
      }
      refuse_duplicate_keys(item.second, full, source);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      refuse_duplicate_keys(node[i], prefix + "[" + std::to_string(i) + "]", source);
    }
  }
}

// Sets node[parts[i]][parts[i+1]]... = value. yaml-cpp's operator= writes
// through a handle instead of rebinding it, so each level is re-fetched by
// index and passed down by value (the copy constructor does rebind).
void set_path(YAML::Node node, const std::vector<std::string>& parts, std::size_t i,
              const YAML::Node& value, const std::string& path) {
  if (i + 1 == parts.size()) {
    node[parts[i]] = value;
    return;
  }
  const YAML::Node current = node[parts[i]];
  if (!current.IsMap()) {
    if (current.IsSequence()) {
      throw Error::invalid_argument("--set " + path + ": '" + parts[i] + "' is not a mapping");
    }
    // A scalar shorthand (partition: iid, strategy: fedavg) becomes a mapping
    // that keeps its value under kind / name.
    YAML::Node replacement(YAML::NodeType::Map);
    if (current.IsScalar()) replacement[parts[i] == "strategy" ? "name" : "kind"] = current.Scalar();
    node[parts[i]] = replacement;
  }
  set_path(node[parts[i]], parts, i + 1, value, path);
}

// Applies "a.b.c=value" to the tree, creating maps on the way.
std::string apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error::invalid_argument("--set " + assignment + ": expected key.path=value");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string value_text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw Error::invalid_argument("--set " + assignment + ": empty key in '" + path + "'");
    parts.push_back(part);
  }
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    throw Error::invalid_argument("--set " + path + ": invalid YAML value: " + e.msg);
  }
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  set_path(root, parts, 0, value, path);
  return path;
}

}  // namespace

JobSpec parse_job(const std::string& yaml_text, const std::string& source_name,
                  const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw Error::invalid_argument(source_name + ":" + std::to_string(e.mark.line + 1) +
                                  ": invalid YAML: " + e.msg);
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    throw Error::invalid_argument(source_name + ": a job file must be a mapping of keys");
  }
  refuse_duplicate_keys(root, "", source_name);
  std::set<std::string> overridden;
  for (const auto& o : overrides) overridden.insert(apply_override(root, o));
  JobSpec job;
  JobReader(source_name, overridden, job).read(root);
  return job;
}

JobSpec load_job(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return parse_job("", "(defaults)", overrides);
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    throw Error::not_found(path + ": cannot read job file");
  }
  return parse_job(text, path, overrides);
}

std::vector<std::pair<std::string, std::string>> flatten_job(const JobSpec& j) {
  auto s = [](const Scalar& v) { return scalar_to_string(v); };
  std::vector<std::pair<std::string, std::string>> out = {
      {"name", j.name},
      {"seed", std::to_string(j.seed)},
      {"rounds", s(j.rounds)},
      {"model", j.model},
      {"data.dataset", j.data.dataset},
      {"data.path", j.data.path},
      {"data.test_path", j.data.test_path},
      {"data.label", j.data.label},
      {"data.test_fraction", s(j.data.test_fraction)},
      {"data.val_fraction", s(j.data.val_fraction)},
      {"data.limit_train", s(j.data.limit_train)},
      {"data.limit_test", s(j.data.limit_test)},
      {"data.partition.kind", j.data.partition.kind},
      {"data.partition.alpha", s(j.data.partition.alpha)},
      {"data.partition.min_partition_size", s(j.data.partition.min_partition_size)},
      {"data.partition.classes_per_client", s(j.data.partition.classes_per_client)},
      {"clients.count", s(j.clients.count)},
      {"clients.fraction_fit", s(j.clients.fraction_fit)},
      {"clients.min_fit", s(j.clients.min_fit)},
      {"clients.fraction_evaluate", s(j.clients.fraction_evaluate)},
      {"clients.min_evaluate", s(j.clients.min_evaluate)},
      {"clients.min_available", s(j.clients.min_available)},
      {"train.epochs", s(j.train.epochs)},
      {"train.batch_size", s(j.train.batch_size)},
      {"train.lr", s(j.train.lr)},
      {"train.optimizer", j.train.optimizer},
      {"train.momentum", s(j.train.momentum)},
      {"train.weight_decay", s(j.train.weight_decay)},
      {"strategy.name", j.strategy.name},
      {"strategy.accept_failures", s(j.strategy.accept_failures)},
      {"evaluation.initial", s(j.evaluation.initial)},
      {"evaluation.federated", s(j.evaluation.federated)},
      {"evaluation.batch_size", s(j.evaluation.batch_size)},
      {"runtime.parallelism", s(j.runtime.parallelism)},
      {"runtime.threads_per_client", s(j.runtime.threads_per_client)},
      {"tracking.uri", j.tracking.uri},
      {"tracking.experiment", j.tracking.experiment},
      {"tracking.journal", j.tracking.journal},
      {"tracking.timeout", s(j.tracking.timeout)},
      {"versioning.enabled", s(j.versioning.enabled)},
      {"versioning.repo", j.versioning.repo},
      {"versioning.path", j.versioning.path},
      {"versioning.remote", j.versioning.remote},
      {"versioning.push", s(j.versioning.push)},
      {"server.round_timeout", s(j.server.round_timeout)},
      {"server.client_timeout", s(j.server.client_timeout)},
  };
  if (!j.data.classes.empty()) {  // only when declared: the digest of other jobs stays
    std::string list;
    for (const auto& c : j.data.classes) list += (list.empty() ? "" : ",") + c;
    out.emplace_back("data.classes", list);
  }
  if (j.attack.clients > 0) {
    out.emplace_back("attack.clients", s(j.attack.clients));
    out.emplace_back("attack.scale", s(j.attack.scale));
  }
  const DpSpec& dp = j.privacy.dp;
  if (j.privacy.enabled()) {
    out.emplace_back("privacy.dp.mode", dp.mode);
    out.emplace_back("privacy.dp.noise_multiplier", s(dp.noise_multiplier));
    out.emplace_back("privacy.dp.clipping_norm", s(dp.clipping_norm));
    out.emplace_back("privacy.dp.delta", s(dp.delta));
    if (dp.target_clipped_quantile) out.emplace_back("privacy.dp.target_clipped_quantile", s(*dp.target_clipped_quantile));
    if (dp.clip_norm_lr) out.emplace_back("privacy.dp.clip_norm_lr", s(*dp.clip_norm_lr));
    if (dp.clipped_count_stddev) out.emplace_back("privacy.dp.clipped_count_stddev", s(*dp.clipped_count_stddev));
  }
  // Strategy options only where the job sets them (else Flower's defaults apply).
  const auto& st = j.strategy;
  const std::pair<const char*, std::optional<double>> options[] = {
      {"proximal_mu", st.proximal_mu}, {"server_learning_rate", st.server_learning_rate},
      {"server_momentum", st.server_momentum}, {"eta", st.eta}, {"eta_l", st.eta_l}, {"beta_1", st.beta_1},
      {"beta_2", st.beta_2}, {"tau", st.tau}, {"beta", st.beta}, {"q", st.q},
      {"client_learning_rate", st.client_learning_rate}};
  for (const auto& [key, value] : options) {
    if (value) out.emplace_back(std::string("strategy.") + key, s(*value));
  }
  if (st.num_malicious_clients) out.emplace_back("strategy.num_malicious_clients", s(*st.num_malicious_clients));
  if (st.num_clients_to_keep) out.emplace_back("strategy.num_clients_to_keep", s(*st.num_clients_to_keep));
  return out;
}

std::string job_digest(const JobSpec& job) {
  auto operational = [](const std::string& key) {
    for (const char* prefix : {"tracking.", "versioning.", "server.", "runtime."}) {
      if (key.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };
  std::string canonical;
  for (const auto& [key, value] : flatten_job(job)) {
    if (!operational(key)) canonical += key + "=" + value + "\n";
  }
  return sha256_hex(canonical);
}

std::string state_path_of(const JobSpec& job) {
  return job.server.state.empty() ? job.name + ".state.db" : job.server.state;
}

}  // namespace fedtrack
