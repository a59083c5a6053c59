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

// The job's strategy: make_strategy(job.strategy, base), wrapped in the
// central-DP wrapper that job.privacy.dp.mode names (dp_fixed_clipping.h,
// dp_adaptive_clipping.h), if any. The wrapper's noise RNG is seeded from
// job.seed; its accountant samples at q = sampled clients / clients.count
// (= clients.fraction_fit unless clients.min_fit raises it).
std::unique_ptr<Strategy> make_job_strategy(const JobSpec& job, FedAvgOptions base);

}  // namespace fedtrack
