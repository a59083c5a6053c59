#include "fedtrack/connectors/job_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <limits>
#include <set>
#include <sstream>

#include "fedtrack/connectors/job_schema.h"
#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/strategy_registry.h"
#include "fedtrack/versioning/dvc_artifacts.h"

namespace fedtrack {
namespace {

// Walks the YAML tree against the schema table (job_schema.h): each mapping's
// keys must be rows or sections of the table, each value is read by its row's
// kind and range into the JobSpec member the row binds, and where each key
// came from is recorded. Checks across keys follow each section.
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
    if (root.IsNull()) return;
    read_section(root, "");
  }

 private:
  // The keys and sections directly under `path` ("" = the top level), in
  // table order: what the unknown-key message lists.
  static std::vector<std::string> children(const std::string& path) {
    if (path == "strategy") {
      // name, accept_failures, then the options in registry order.
      std::vector<std::string> out = {"name", "accept_failures"};
      for (const auto& info : strategy_registry()) {
        for (const auto& o : info.options) {
          if (std::find(out.begin(), out.end(), o.key) == out.end()) out.emplace_back(o.key);
        }
      }
      return out;
    }
    std::vector<std::string> out;
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const auto& k : job_keys()) {
      if (k.key.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string rest = k.key.substr(prefix.size());
      const std::string child = rest.substr(0, rest.find('.'));
      if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
    }
    return out;
  }

  static std::string join_key(const std::string& path, const std::string& child) {
    return path.empty() ? child : path + "." + child;
  }

  // Checks a mapping against the schema, reads its keys in table order,
  // then the checks that involve several of them.
  void read_section(const YAML::Node& node, const std::string& path) {
    const std::vector<std::string> known = children(path);
    auto m = section(node, path, known);
    std::set<std::string> done;
    before_keys(path, node, m, done);
    for (const auto& child : known) {
      if (!m.count(child) || done.count(child)) continue;
      const std::string full = join_key(path, child);
      if (const JobKey* row = find_job_key(full)) {
        read_key(*row, m[child], full);
      } else {
        read_subsection(m[child], full);
      }
    }
    after_keys(path, node, m);
  }

  // A section may be a scalar shorthand for one of its keys.
  void read_subsection(const YAML::Node& node, const std::string& path) {
    const JobSection* section_def = find_job_section(path);
    if (node.IsScalar() && section_def != nullptr && !section_def->shorthand.empty()) {
      const std::string target = path + "." + section_def->shorthand;
      job_.sources[target] = job_.sources[path];
      if (path == "strategy") {
        // Unchecked here as before: an unknown name is Error(kNotFound) from
        // make_strategy (exit 3). A strategy with a required option still needs it.
        job_.strategy.name = string(node, path);
        if (const StrategyInfo* info = find_strategy(job_.strategy.name)) require_strategy_options(*info, node);
      } else {
        read_key(*find_job_key(target), node, path);
      }
      return;
    }
    read_section(node, path);
  }

  // Parses one key's value into its JobSpec member; `key` names it in errors.
  void read_key(const JobKey& row, const YAML::Node& node, const std::string& key) {
    switch (row.kind) {
      case KeyKind::kString:
        assign(row, string(node, key));
        break;
      case KeyKind::kChoice: {
        // The names of things that may not exist (a strategy, a dataset) are "not found"; other choices
        // (an optimizer, a partition kind, a mode) are invalid arguments.
        const bool names_a_thing = row.key == "strategy.name" || row.key == "data.dataset";
        assign(row, string(node, key, row.choices,
                           names_a_thing ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument));
        break;
      }
      case KeyKind::kInteger:
        assign(row, integer(node, key, row.int_lo, row.int_hi));
        break;
      case KeyKind::kNumber:
        assign(row, number(node, key, row.lo, row.hi, row.lo_open));
        break;
      case KeyKind::kBoolean:
        assign(row, boolean(node, key));
        break;
      case KeyKind::kClassList:
        assign(row, class_list(node, key));
        break;
      case KeyKind::kChoiceList:
        assign(row, choice_list(node, key, row.choices));
        break;
    }
    after_key(key, node);
  }

  template <typename V>
  void assign(const JobKey& row, V value) {
    std::visit(
        [&](const auto& get) {
          auto& member = get(job_);
          using M = std::decay_t<decltype(member)>;
          if constexpr (std::is_same_v<M, V> || std::is_same_v<M, std::optional<V>>) {
            member = std::move(value);
          } else if constexpr (std::is_same_v<M, std::uint64_t> && std::is_same_v<V, std::int64_t>) {
            member = static_cast<M>(value);  // seed: read as an integer >= 0
          } else {
            throw Error::invalid_argument(row.key + ": the schema binds it to a member of another type");
          }
        },
        row.bind);
  }

  // A YAML sequence of distinct choices ([] = none); one name alone is a list of one.
  std::vector<std::string> choice_list(const YAML::Node& c, const std::string& key,
                                       const std::vector<std::string>& choices) {
    std::vector<std::string> out;
    if (c.IsScalar()) {
      out.push_back(string(c, key, choices, ErrorCode::kInvalidArgument));
    } else if (c.IsSequence()) {
      for (std::size_t i = 0; i < c.size(); ++i) {
        const std::string name = string(c[i], key, choices, ErrorCode::kInvalidArgument);
        if (std::find(out.begin(), out.end(), name) != out.end()) fail(c[i], key, "names '" + name + "' twice");
        out.push_back(name);
      }
    } else {
      fail(c, key, "expected a list of formats, got '" + text(c) + "'");
    }
    return out;
  }

  std::vector<std::string> class_list(const YAML::Node& c, const std::string& key) {
    std::vector<std::string> classes;
    if (c.IsScalar()) {
      const std::int64_t n = integer(c, key, 1, 100000);
      for (std::int64_t k = 0; k < n; ++k) classes.push_back(std::to_string(k));
    } else if (c.IsSequence() && c.size() > 0) {
      for (std::size_t i = 0; i < c.size(); ++i) {
        const std::string name = string(c[i], key);
        if (std::find(classes.begin(), classes.end(), name) != classes.end()) {
          fail(c[i], key, "names class '" + name + "' twice");
        }
        classes.push_back(name);
      }
    } else {
      fail(c, key, "expected a number of classes or a list of class names, got '" + text(c) + "'");
    }
    return classes;
  }

  // Checks of one key beyond its type and range.
  void after_key(const std::string& key, const YAML::Node& node) {
    if (key == "data.classes" && job_.data.dataset != "csv") {
      fail(node, key, "only applies to csv data (" + job_.data.dataset + " has its own 10 classes)");
    }
    if (key == "privacy.dp.delta" && job_.privacy.dp.delta >= 1) {
      fail(node, key, "must be < 1, got " + scalar_to_string(job_.privacy.dp.delta));
    }
    if (key == "versioning.artifact" && !job_.versioning.artifact.empty() &&
        !is_dvc_artifact_name(job_.versioning.artifact)) {
      fail(node, key, "must be a DVC artifact name (letters, digits, '-' and '_', starting and ending with a letter "
                      "or digit, at most 100 characters), got '" + job_.versioning.artifact + "'");
    }
    if (key == "versioning.author") {
      const std::string& author = job_.versioning.author;
      if (author.find('<') == std::string::npos || author.back() != '>') {
        fail(node, key, "must look like 'Name <email>', got '" + author + "'");
      }
    }
  }

  // Checks that decide whether a section's other keys may be read at all.
  void before_keys(const std::string& path, const YAML::Node& node, std::map<std::string, YAML::Node>& m,
                   std::set<std::string>& done) {
    if (path == "strategy") {
      auto& st = job_.strategy;
      for (const char* key : {"name", "accept_failures"}) {
        if (m.count(key)) read_key(*find_job_key(std::string("strategy.") + key), m[key], std::string("strategy.") + key);
        done.insert(key);
      }
      const StrategyInfo& info = *find_strategy(st.name);
      for (const auto& [key, value] : m) {
        if (key == "name" || key == "accept_failures" || info.option(key) != nullptr) continue;
        std::string list;
        for (const auto& o : info.options) list += (list.empty() ? "" : ", ") + std::string(o.key);
        fail(value, "strategy." + key,
             "is not an option of strategy '" + st.name + "' (its options: " + (list.empty() ? "none" : list) + ")");
      }
    }
    if (path == "privacy.dp") {
      DpSpec& dp = job_.privacy.dp;
      if (!m.count("mode")) fail(node, "privacy.dp.mode", "is required (one of " + join(dp_mode_names()) + ")");
      read_key(*find_job_key("privacy.dp.mode"), m["mode"], "privacy.dp.mode");
      done.insert("mode");
      const bool adaptive = dp.mode == "server_adaptive" || dp.mode == "client_adaptive";
      for (const char* key : {"target_clipped_quantile", "clip_norm_lr", "clipped_count_stddev"}) {
        if (m.count(key) && !adaptive) {
          fail(m[key], std::string("privacy.dp.") + key,
               "only applies to the adaptive modes (server_adaptive, client_adaptive), not " + dp.mode);
        }
      }
    }
  }

  void require_strategy_options(const StrategyInfo& info, const YAML::Node& node) {
    for (const auto& o : info.options) {
      if (o.flower_default) continue;
      if (job_key_listed(*find_job_key(std::string("strategy.") + o.key), job_)) continue;
      fail(node, std::string("strategy.") + o.key, std::string("is required by ") + info.name);
    }
  }

  // Checks that involve several keys of a section (or of earlier ones).
  void after_keys(const std::string& path, const YAML::Node& node, std::map<std::string, YAML::Node>& m) {
    if (path == "data") {
      if (job_.data.dataset == "csv" && job_.data.path.empty()) fail(node, "data.path", "is required when data.dataset is csv");
    } else if (path == "clients") {
      // Defaults of 2 shrink to fit a smaller federation; explicit values must fit.
      auto& s = job_.clients;
      auto fits = [&](const char* key, std::int64_t& value) {
        if (!m.count(key)) {
          value = std::min(value, s.count);
        } else if (value > s.count) {
          fail(m[key], std::string("clients.") + key,
               "is " + std::to_string(value) + " but clients.count is " + std::to_string(s.count));
        }
      };
      fits("min_fit", s.min_fit);
      fits("min_evaluate", s.min_evaluate);
      fits("min_available", s.min_available);
    } else if (path == "strategy") {
      require_strategy_options(*find_strategy(job_.strategy.name), node);
    } else if (path == "tracking") {
      const std::string& uri = job_.tracking.uri;
      if (!uri.empty() && uri.rfind("http://", 0) != 0 && uri.rfind("https://", 0) != 0) {
        fail(m["uri"], "tracking.uri", "must be an http:// or https:// MLflow server, got '" + uri + "'");
      }
    } else if (path == "versioning") {
      const std::string& p = job_.versioning.path;
      if (p.front() == '/' || p.find("..") != std::string::npos) {
        fail(m.count("path") ? m["path"] : node, "versioning.path", "must be a path inside the repository, got '" + p + "'");
      }
    } else if (path == "attack") {
      if (job_.attack.clients > job_.clients.count) {
        fail(m["clients"], "attack.clients", "is " + std::to_string(job_.attack.clients) + " but clients.count is " +
                                                 std::to_string(job_.clients.count));
      }
    } else if (path == "secure_aggregation") {
      check_secure_aggregation(node, m);
    } else if (path.empty()) {
      check_secure_aggregation_composes(node);
    } else if (path == "compression") {
      check_compression(node, m);
    } else if (path == "privacy.dp") {
      DpSpec& dp = job_.privacy.dp;
      if (dp.mode == "server_adaptive" || dp.mode == "client_adaptive") {
        // Part of sigma pays for the noisy clipped count; it must leave some for the model.
        const double sampled = static_cast<double>(clients_to_sample(
            static_cast<std::size_t>(job_.clients.count), job_.clients.fraction_fit,
            static_cast<std::size_t>(job_.clients.min_fit)));
        const double count_stddev = dp.clipped_count_stddev.value_or(sampled / 20);
        if (dp.noise_multiplier >= 2 * count_stddev) {
          fail(m.count("noise_multiplier") ? m["noise_multiplier"] : m["mode"], "privacy.dp.noise_multiplier",
               "must be below 2 * clipped_count_stddev = " + scalar_to_string(2 * count_stddev) +
                   " in adaptive modes, got " + scalar_to_string(dp.noise_multiplier) +
                   (dp.clipped_count_stddev ? "" : " (clipped_count_stddev defaults to sampled clients / 20; set it higher)"));
        }
      }
    }
  }

  // secure_aggregation.*: counts vs fractions, threshold <= num_shares, a
  // power-of-two modulus above the quantization range.
  void check_secure_aggregation(const YAML::Node& node, std::map<std::string, YAML::Node>& m) {
    const SecureAggregationSpec& sa = job_.secure_aggregation;
    auto at = [&](const char* key) { return m.count(key) ? m[key] : node; };
    auto count_or_fraction = [&](const char* key, double value, double least) {
      if (value > 1 && (value != std::floor(value) || value < least)) {
        fail(at(key), std::string("secure_aggregation.") + key,
             "must be a fraction in (0, 1] or an integer >= " + scalar_to_string(least) + ", got " +
                 scalar_to_string(value));
      }
    };
    count_or_fraction("num_shares", sa.num_shares, 3);
    count_or_fraction("reconstruction_threshold", sa.reconstruction_threshold, 2);
    if (sa.num_shares > 1 && sa.reconstruction_threshold > sa.num_shares) {
      fail(at("reconstruction_threshold"), "secure_aggregation.reconstruction_threshold",
           "is " + scalar_to_string(sa.reconstruction_threshold) + " but secure_aggregation.num_shares is " +
               scalar_to_string(sa.num_shares) + "; it must not exceed it");
    }
    const std::int64_t modulus = sa.modulus_range;
    if ((modulus & (modulus - 1)) != 0 || modulus <= sa.quantization_range) {
      fail(at("modulus_range"), "secure_aggregation.modulus_range",
           "must be a power of two greater than secure_aggregation.quantization_range (" +
               std::to_string(sa.quantization_range) + "), got " + std::to_string(modulus));
    }
  }

  // After the whole file: what secure aggregation cannot work with. The
  // robust aggregators and q-FedAvg need each client's update, and so does
  // server-side DP clipping; the server sees only the sum.
  void check_secure_aggregation_composes(const YAML::Node& node) {
    const SecureAggregationSpec& sa = job_.secure_aggregation;
    if (!sa.enabled()) return;
    auto source = [&](const std::string& key) {
      auto it = job_.sources.find(key);
      return it == job_.sources.end() || it->second.empty() ? std::string() : it->second + ": ";
    };
    if (!secure_aggregation_composes(job_.strategy.name)) {
      throw Error::invalid_argument(source("secure_aggregation.mode") +
                                    "secure_aggregation.mode: secaggplus conflicts with " + source("strategy.name") +
                                    "strategy.name: " + job_.strategy.name +
                                    " (it needs each client's update; the server sees only their sum). Use "
                                    "fedavg, fedprox, fedavgm, fedadam, fedyogi or fedadagrad");
    }
    const std::string& dp = job_.privacy.dp.mode;
    if (dp == "server_fixed" || dp == "server_adaptive") {
      throw Error::invalid_argument(source("secure_aggregation.mode") +
                                    "secure_aggregation.mode: secaggplus conflicts with " +
                                    source("privacy.dp.mode") + "privacy.dp.mode: " + dp +
                                    " (the server cannot clip updates it never sees). Use client_fixed or "
                                    "client_adaptive");
    }
    // Compressed updates and SecAgg+ do not compose: the masks need dense
    // 32-bit words of the quantized update, and the protocol replaces the
    // upload the codec would encode.
    if (job_.compression.enabled()) {
      const std::string key = job_.compression.uplink != "none" ? "compression.uplink" : "compression.downlink";
      const std::string value = key == "compression.uplink" ? job_.compression.uplink : job_.compression.downlink;
      throw Error::invalid_argument(source("secure_aggregation.mode") +
                                    "secure_aggregation.mode: secaggplus conflicts with " + source(key) + key + ": " +
                                    value + " (SecAgg+ masks dense quantized updates; run it without compression)");
    }
    (void)node;
    const std::size_t clients = clients_to_sample(static_cast<std::size_t>(job_.clients.count),
                                                  job_.clients.fraction_fit,
                                                  static_cast<std::size_t>(job_.clients.min_fit));
    if (static_cast<long double>(clients) * sa.quantization_range >= static_cast<long double>(sa.modulus_range)) {
      std::string blame = source("secure_aggregation.modulus_range");
      if (blame.empty()) blame = source("secure_aggregation.quantization_range");
      if (blame.empty()) blame = source("secure_aggregation.mode");
      throw Error::invalid_argument(blame + "secure_aggregation.modulus_range: " + std::to_string(sa.modulus_range) +
                                    " overflows with " + std::to_string(clients) + " sampled clients" +
                                    " x secure_aggregation.quantization_range " +
                                    std::to_string(sa.quantization_range) + "; raise it or lower the range");
    }
  }

  // Conflicts of compression.* with the rest of the job (read before it:
  // compression is the table's last section).
  void check_compression(const YAML::Node& node, std::map<std::string, YAML::Node>& m) {
    const CompressionSpec& c = job_.compression;
    const YAML::Node& uplink = m.count("uplink") ? m["uplink"] : node;
    if (m.count("topk_fraction") && c.uplink != "topk") {
      fail(m["topk_fraction"], "compression.topk_fraction", "only applies to compression.uplink: topk, not " + c.uplink);
    }
    if (c.uplink == "topk" && !aggregates_sparse_updates(job_.strategy.name)) {
      fail(uplink, "compression.uplink",
           "topk conflicts with strategy.name " + job_.strategy.name +
               ": a robust aggregator compares whole updates, and top-k updates are mostly zeros "
               "(use uplink fp16 or int8, or an averaging strategy)");
    }
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  }

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
    if (current.IsScalar()) {
      std::string section_path;
      for (std::size_t k = 0; k <= i; ++k) section_path += (k ? "." : "") + parts[k];
      const JobSection* section = find_job_section(section_path);
      replacement[section != nullptr && !section->shorthand.empty() ? section->shorthand : "kind"] = current.Scalar();
    }
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
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : job_keys()) {
    if (job_key_listed(row, j)) out.emplace_back(row.key, job_key_text(row, j));
  }
  return out;
}

namespace {

// The number text fedtrack's params used when the digest was defined: %g
// with the fewest digits that read back (600 is "6e+02"). The digest keeps
// it so that a job's digest, and so its resume state, stays what it was.
std::string digest_number_text(double d) {
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, d);
    if (std::strtod(shorter, nullptr) == d) return shorter;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

bool in_digest(const JobKey& row, const JobSpec& job) {
  switch (row.digest) {
    case InDigest::kYes: return job_key_listed(row, job);
    case InDigest::kNo: return false;
    case InDigest::kWhenAttacking: return job.attack.clients > 0;
  }
  return false;
}

}  // namespace

std::string job_digest(const JobSpec& job) {
  // Canonical text: "key=value\n" for the keys every job has, in table
  // order, then for the keys only some jobs have (declared classes, an
  // attack, privacy, strategy options), in table order.
  std::string every_job, some_jobs;
  for (const auto& row : job_keys()) {
    if (!in_digest(row, job)) continue;
    std::string value = job_key_text(row, job);
    if (row.kind == KeyKind::kNumber) {
      JobSpec& j = const_cast<JobSpec&>(job);
      std::visit(
          [&](const auto& get) {
            const auto& v = get(j);
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, double>) value = digest_number_text(v);
            if constexpr (std::is_same_v<T, std::optional<double>>) value = digest_number_text(*v);
          },
          row.bind);
    }
    const bool every = row.listed == Listed::kAlways && row.digest == InDigest::kYes;
    (every ? every_job : some_jobs) += row.key + "=" + value + "\n";
  }
  return sha256_hex(every_job + some_jobs);
}

std::string state_path_of(const JobSpec& job) {
  return job.server.state.empty() ? job.name + ".state.db" : job.server.state;
}

}  // namespace fedtrack
