#include "dvclive_layout.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fedtrack/core/number_text.h"
#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

// A YAML double-quoted scalar (JSON's string syntax is one).
std::string quoted(const std::string& text) {
  return nlohmann::json(to_valid_utf8(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Plain when every byte is one YAML never reads specially in a path.
std::string yaml_path(const std::string& path) {
  const bool plain = !path.empty() && std::all_of(path.begin(), path.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '/' || c == '-';
  }) && path.front() != '-' && path.front() != '.';
  return plain ? path : quoted(path);
}

// What ruamel.yaml (YAML 1.2, as DVC reads params) takes as a number or a
// boolean, in the spellings fedtrack's params use.
bool plain_scalar(const std::string& v) {
  static const std::regex number(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  return v == "true" || v == "false" || std::regex_match(v, number);
}

std::string yaml_key(const std::string& key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '/' || c == '-';
  }) && std::isalpha(static_cast<unsigned char>(key.front()));
  return plain ? key : quoted(key);
}

std::string tsv_header(const std::string& column) { return "timestamp\tstep\t" + column + "\n"; }

}  // namespace

std::string metric_file_stem(const std::string& metric) {
  std::string out;
  for (unsigned char c : metric.substr(0, 120)) {
    out += (std::isalnum(c) || c == '_' || c == '.' || c == '-') ? static_cast<char>(c) : '_';
  }
  if (out.empty() || out.front() == '.') out = "_" + out;
  return out;
}

std::string dvclive_metrics_json(const Metrics& metrics, int step) {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [k, v] : metrics) {
    if (std::isfinite(v) && k != "step") m[to_valid_utf8(k)] = v;
  }
  m["step"] = step;
  return m.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string dvclive_params_yaml(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  std::set<std::string> seen;
  for (const auto& [k, raw] : params) {
    if (!seen.insert(k).second) continue;  // YAML keys are unique; the first wins, as in MLflow
    const std::string v = redact_secrets(raw);
    out += yaml_key(k) + ": " + (plain_scalar(v) ? v : quoted(v)) + "\n";
  }
  return out;
}

namespace {

// The header and the rows of `previous` with a step below `step`.
std::string rows_before(const std::optional<std::string>& previous, const std::string& column, int step) {
  const std::string header = tsv_header(column);
  std::string out = header;
  if (!previous || previous->compare(0, header.size(), header) != 0) return out;
  std::istringstream lines(previous->substr(header.size()));
  std::string line;
  while (std::getline(lines, line)) {
    // timestamp \t step \t value; anything else is not a row of this file.
    const auto a = line.find('\t');
    const auto b = a == std::string::npos ? a : line.find('\t', a + 1);
    if (b == std::string::npos) continue;
    const std::string step_text = line.substr(a + 1, b - a - 1);
    char* end = nullptr;
    const long s = std::strtol(step_text.c_str(), &end, 10);
    if (step_text.empty() || *end != '\0' || s < 0 || s >= step) continue;
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string dvclive_tsv_with_row(const std::optional<std::string>& previous, const std::string& column, int step,
                                 double value, std::int64_t timestamp_ms) {
  return rows_before(previous, column, step) + std::to_string(timestamp_ms) + "\t" + std::to_string(step) + "\t" +
         number_text(value) + "\n";
}

std::string dvc_yaml_text(const DvcYamlLayout& layout) {
  std::string out;
  if (layout.params) out += std::string("params:\n- ") + kDvcliveParamsFile + "\n";
  out += std::string("metrics:\n- ") + kDvcliveMetricsFile + "\n";
  if (layout.plots) out += std::string("plots:\n- ") + kDvclivePlotsDir + ":\n    x: step\n";
  if (!layout.artifacts.empty()) {
    out += "artifacts:\n";
    for (const auto& a : layout.artifacts) {
      out += "  " + a.name + ":\n    path: " + yaml_path(a.path) + "\n    type: model\n";
    }
  }
  return out;
}

DvcliveRound dvclive_round(const Metrics& metrics, int step,
                           const std::vector<std::pair<std::string, std::string>>& params,
                           const std::vector<std::string>& previous_plots,
                           const std::function<std::optional<std::string>(const std::string&)>& previous,
                           std::int64_t timestamp_ms) {
  DvcliveRound round;
  round.files[kDvcliveMetricsFile] = dvclive_metrics_json(metrics, step);
  if (!params.empty()) {
    round.params = true;
    round.files[kDvcliveParamsFile] = dvclive_params_yaml(params);
  }
  const std::string plots = kDvclivePlotsDir;
  // Two metric names that map to one file: the first (in name order) keeps it.
  for (const auto& [name, value] : metrics) {
    if (!std::isfinite(value)) continue;
    const std::string stem = metric_file_stem(name);
    const std::string path = plots + "/" + stem + ".tsv";
    if (round.files.count(path)) continue;
    round.files[path] = dvclive_tsv_with_row(previous(path), stem, step, value, timestamp_ms);
  }
  // A metric this round did not report (not finite, or not computed) keeps
  // the curve its earlier rounds drew, without rows past this step.
  for (const auto& path : previous_plots) {
    if (round.files.count(path) || path.rfind(plots + "/", 0) != 0 || path.size() < plots.size() + 6 ||
        path.compare(path.size() - 4, 4, ".tsv") != 0) {
      continue;
    }
    const auto text = previous(path);
    if (!text) continue;
    const std::string stem = path.substr(plots.size() + 1, path.size() - plots.size() - 5);
    if (metric_file_stem(stem) != stem) continue;
    const std::string kept = rows_before(text, stem, step);
    if (kept != tsv_header(stem)) round.files[path] = kept;
  }
  round.plots = std::any_of(round.files.begin(), round.files.end(),
                            [&](const auto& f) { return f.first.rfind(plots + "/", 0) == 0; });
  return round;
}

}  // namespace fedtrack
