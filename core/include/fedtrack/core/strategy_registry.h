// The strategy registry: every strategy a job may name, its options with
// Flower's names and defaults, and which factory builds it. Torch-free: the
// job reader (connectors/) checks `strategy:` sections against it, and
// make_strategy (strategy_factory.h) reads its defaults from it, so a name,
// an option or a default exists in exactly one place.
//
// Plain constant data, built once; safe to read from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fedtrack/core/job_spec.h"

namespace fedtrack {

// Which factory in make_strategy builds a registered strategy. The factory
// switches over this enum without a default, so a strategy registered here
// but not built there is a -Wswitch warning (and a failing unit test).
enum class StrategyKind {
  kBulyan, kFedAdagrad, kFedAdam, kFedAvg, kFedAvgM, kFedMedian, kFedProx,
  kFedTrimmedAvg, kFedYogi, kKrum, kMultiKrum, kQFedAvg,
};

// One option key of the `strategy:` section, bound to its StrategySpec member.
struct StrategyOptionDef {
  const char* key;  // Flower's name, e.g. "eta"
  std::variant<std::optional<double> StrategySpec::*, std::optional<std::int64_t> StrategySpec::*> member;
  double lo, hi;    // accepted range: [lo, hi], or (lo, hi] when lo_open
  bool lo_open;
  const char* doc;
};

// An option a strategy takes, with Flower's default (none: required).
struct StrategyOption {
  const char* key;
  std::optional<double> flower_default;
};

struct StrategyInfo {
  const char* name;
  StrategyKind kind;
  std::vector<StrategyOption> options;
  const char* summary;

  const StrategyOption* option(const std::string& key) const;
};

// Every option key any strategy takes, in the order of the job's params.
const std::vector<StrategyOptionDef>& strategy_option_defs();

// Every strategy, by name.
const std::vector<StrategyInfo>& strategy_registry();

// nullptr for an unknown name.
const StrategyInfo* find_strategy(const std::string& name);

// The registered names, sorted.
std::vector<std::string> strategy_names();

// The value of option `key` for `spec`'s strategy: the job's, else Flower's
// default. Error(kInvalidArgument) for a required option the job left unset.
double strategy_option(const StrategyInfo& info, const StrategySpec& spec, const std::string& key);

}  // namespace fedtrack
