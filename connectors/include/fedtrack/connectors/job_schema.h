// The job-file schema: one row per key. The table drives the job reader
// (names, types, ranges, enums; `--set` goes through the same reader), the
// flattened params logged to MLflow (flatten_job), the job digest that ties a
// resume state to its job (job_digest), and the generated reference
// docs/job-file.md (job_file_markdown; regenerate with
// `cmake --build build --target job-file-doc`). Torch-free.
//
// Defaults are the JobSpec member initializers (core/job_spec.h): a row
// binds its member, so the default it documents is read from JobSpec{} and
// cannot drift. Checks that involve several keys (clients.min_fit <=
// clients.count, fedprox needs proximal_mu, ...) are code in job_config.cpp.
// Strategy options come from the strategy registry (core/strategy_registry.h).
//
// The table is built once; safe to read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fedtrack/core/job_spec.h"

namespace fedtrack {

enum class KeyKind {
  kString,     // non-empty text
  kChoice,     // one of `choices`
  kInteger,    // in [int_lo, int_hi]
  kNumber,     // finite, in [lo, hi] or (lo, hi] when lo_open
  kBoolean,
  kClassList,  // data.classes: a list of distinct names, or a count N = "0".."N-1"
  kChoiceList, // a list of distinct `choices` (may be empty)
};

// When a key appears in the params (and, unless operational, the digest).
enum class Listed {
  kAlways,
  kWhenSet,      // an optional the job set, a list it declared
  kWhenPrivacy,  // privacy.dp.mode is set
  kWhenSecureAggregation,  // secure_aggregation.mode is not none
  kWhenCompressing,  // compression.uplink or .downlink is not none
};

// What the job digest makes of a key.
enum class InDigest {
  kYes,
  kNo,              // operational: may change between a crash and --resume
  kWhenAttacking,   // attack.*: only when attack.clients > 0 (the digest of jobs without an attack predates these params)
};

// Accessors of the JobSpec member a key binds.
using KeyBinding = std::variant<std::function<std::string&(JobSpec&)>, std::function<std::int64_t&(JobSpec&)>,
                                std::function<std::uint64_t&(JobSpec&)>, std::function<double&(JobSpec&)>,
                                std::function<bool&(JobSpec&)>, std::function<std::optional<double>&(JobSpec&)>,
                                std::function<std::optional<std::int64_t>&(JobSpec&)>,
                                std::function<std::vector<std::string>&(JobSpec&)>>;

struct JobKey {
  std::string key;      // dotted, as written in a job file: "train.lr"
  std::string member;   // the JobSpec member it binds: "train.lr"
  KeyBinding bind;
  KeyKind kind = KeyKind::kString;
  std::int64_t int_lo = 0, int_hi = 0;   // kInteger
  double lo = 0, hi = 0;                 // kNumber
  bool lo_open = false;
  std::vector<std::string> choices;      // kChoice
  Listed listed = Listed::kAlways;
  InDigest digest = InDigest::kYes;
  std::string doc;      // one line
  std::string default_doc;  // how the docs show the default when JobSpec{}'s value needs words
};

// A mapping in the job file that is not a key: "data", "data.partition", ...
struct JobSection {
  std::string path;
  std::string shorthand;  // a scalar in its place sets this key (`partition: iid`, `strategy: fedavg`)
  std::string doc;
};

// Every key, in the order of the params.
const std::vector<JobKey>& job_keys();
const std::vector<JobSection>& job_sections();

// nullptr when unknown.
const JobKey* find_job_key(const std::string& key);
const JobSection* find_job_section(const std::string& path);

// The value `job` holds for `row`, as the params show it ("" for an unset
// optional): numbers as scalar_to_string (shortest text that reads back).
std::string job_key_text(const JobKey& row, const JobSpec& job);

// Whether `row` appears in flatten_job(job).
bool job_key_listed(const JobKey& row, const JobSpec& job);

// docs/job-file.md: every key with its type, range, default, digest role and
// doc, and the strategies with their options and Flower's defaults.
std::string job_file_markdown();

}  // namespace fedtrack
