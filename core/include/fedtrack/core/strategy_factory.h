// Builds a strategy from the job's `strategy:` section. The runtime supplies
// the parts that are not in the job file (initial model, evaluation,
// per-round configs) through `base`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/job_spec.h"

namespace fedtrack {

// Error(kNotFound) naming the known strategies for an unknown name.
std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec, FedAvgOptions base);

std::vector<std::string> strategy_names();

}  // namespace fedtrack
