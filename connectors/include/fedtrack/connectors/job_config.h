// Job files: YAML (JSON is YAML) describing one federated job, read into a
// validated fedtrack::JobSpec. Torch-free.
//
// Every key is checked: an unknown key, a value of the wrong type or out of
// range is Error(kInvalidArgument) whose message starts with where the key was
// written ("job.yaml:7: train.lr: expected a number > 0, got 'fast'", or
// "--set train.lr: ..." for a command-line override). The CLI exits with
// status 2 on those; an unknown strategy or dataset name and a missing job
// file are Error(kNotFound), status 3. The keys are the rows of the schema
// table (job_schema.h), listed with their defaults in docs/job-file.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/job_spec.h"

namespace fedtrack {

// Reads `path` (empty = the embedded defaults, no file) and applies
// `overrides`, each "dotted.key=value" with value parsed as YAML.
JobSpec load_job(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text; `source_name` is used in error locations.
JobSpec parse_job(const std::string& yaml_text, const std::string& source_name,
                  const std::vector<std::string>& overrides = {});

// Every setting as ("section.key", "value") in the schema table's order, e.g.
// ("train.lr", "0.05"); optional keys only when set, privacy.dp.* only when
// DP is on. Used for MLflow params and reports.
std::vector<std::pair<std::string, std::string>> flatten_job(const JobSpec& job);

// sha256 of the keys that decide the model (the schema's non-operational
// keys: everything but tracking.*, versioning.*, server.*, runtime.*): a
// resume must run the same job. Its canonical text is frozen so that a job
// keeps its digest across fedtrack versions.
std::string job_digest(const JobSpec& job);

// The job's resume state file: server.state, else "<name>.state.db".
std::string state_path_of(const JobSpec& job);

}  // namespace fedtrack
