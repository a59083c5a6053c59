// The DVCLive-shaped files a round commit writes into the model repository,
// as DVCLive (iterative/dvclive: live.py, plots/metric.py, dvc.py) lays them
// out, so `dvc metrics show/diff`, `dvc params diff`, `dvc plots show/diff`
// and `dvc exp show` read a fedtrack repository like a DVCLive one:
//
//   dvclive/metrics.json                 the round's metrics (finite values) + "step": round
//   dvclive/params.yaml                  the job config, flattened as the MLflow params
//                                        ("train.lr": 0.01), secrets removed
//   dvclive/plots/metrics/<name>.tsv     "timestamp\tstep\t<name>", one row per round so far
//   dvc.yaml                             params, metrics, plots (x: step), artifacts
//
// Departures from DVCLive, and why: a metric name becomes a file name
// through metric_file_stem (DVCLive nests "a/b" into folders; fedtrack's
// metric names are flat, and an untrusted name must not reach outside the
// plots folder); params keep MLflow's flat dotted keys instead of nested
// mappings (a key may be a prefix of another: model / model.input_shape).
//
// Pure functions (no git, no files): commit_round gives them what the job's
// previous round committed and writes what they return. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/records.h"

namespace fedtrack {

inline constexpr const char* kDvcliveMetricsFile = "dvclive/metrics.json";
inline constexpr const char* kDvcliveParamsFile = "dvclive/params.yaml";
inline constexpr const char* kDvclivePlotsDir = "dvclive/plots/metrics";

// The file stem of a metric's .tsv: its name with every byte outside
// [A-Za-z0-9_.-] as '_', a leading '.' as '_', cut to 120 bytes.
std::string metric_file_stem(const std::string& metric);

// {"<metric>": value, ..., "step": step}, keys sorted, non-finite values left out.
std::string dvclive_metrics_json(const Metrics& metrics, int step);

// One "key: value" line per param, in the order given. A value that reads
// as a YAML number or boolean is written plain, anything else as a
// double-quoted string; every value passes through redact_secrets first.
std::string dvclive_params_yaml(const std::vector<std::pair<std::string, std::string>>& params);

// The .tsv of one metric after `step`: the rows of `previous` (what the
// job's previous round committed) with a step below `step`, then this one.
// A `previous` with another header is not this metric's file: dropped.
// So a replayed or resumed round never duplicates a row.
std::string dvclive_tsv_with_row(const std::optional<std::string>& previous, const std::string& column, int step,
                                 double value, std::int64_t timestamp_ms);

struct DvcArtifact {
  std::string name;
  std::string path;  // relative to the repository root
};

struct DvcYamlLayout {
  bool params = false;  // dvclive/params.yaml is written
  bool plots = false;   // dvclive/plots/metrics holds at least one .tsv
  std::vector<DvcArtifact> artifacts;  // type model each, in this order
};

// dvc.yaml as DVCLive's make_dvcyaml writes it (params, metrics, plots, artifacts).
std::string dvc_yaml_text(const DvcYamlLayout& layout);

// What one round writes beside the model: files (repository-relative path
// -> bytes) and the plots .tsv files the round no longer has (to delete).
struct DvcliveRound {
  std::map<std::string, std::string> files;
  bool params = false;
  bool plots = false;
};

// The DVCLive files of round `step`: `previous(path)` returns what the job's
// previous round committed at `path` (nullopt when nothing); `previous_plots`
// lists the metric .tsv paths that round committed (a metric missing from
// this round keeps its curve).
DvcliveRound dvclive_round(const Metrics& metrics, int step,
                           const std::vector<std::pair<std::string, std::string>>& params,
                           const std::vector<std::string>& previous_plots,
                           const std::function<std::optional<std::string>(const std::string&)>& previous,
                           std::int64_t timestamp_ms);

}  // namespace fedtrack
