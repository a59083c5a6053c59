// Builds a strategy from the job's `strategy:` section. The runtime supplies
// the parts that are not in the job file (initial model, evaluation,
// per-round configs) through `base`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/strategy_registry.h"

namespace fedtrack {

// The strategy spec.name names in the registry (strategy_registry.h), with
// the job's options or else the registry's Flower defaults. Error(kNotFound)
// naming the known strategies for an unknown name; Error(kInvalidArgument)
// for a required option left unset (fedprox's proximal_mu, multikrum's
// num_clients_to_keep).
std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec, FedAvgOptions base);

// The job's strategy: make_strategy(job.strategy, base), wrapped in the
// central-DP wrapper that job.privacy.dp.mode names (dp_fixed_clipping.h,
// dp_adaptive_clipping.h), if any. The wrapper's noise RNG is seeded from
// job.seed; its accountant samples at q = sampled clients / clients.count
// (= clients.fraction_fit unless clients.min_fit raises it).
std::unique_ptr<Strategy> make_job_strategy(const JobSpec& job, FedAvgOptions base);

}  // namespace fedtrack
