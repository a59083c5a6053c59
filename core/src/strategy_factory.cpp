#include "fedtrack/core/strategy_factory.h"

#include <algorithm>

#include "fedtrack/core/bulyan.h"
#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/dp_adaptive_clipping.h"
#include "fedtrack/core/dp_fixed_clipping.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedadagrad.h"
#include "fedtrack/core/fedadam.h"
#include "fedtrack/core/fedavgm.h"
#include "fedtrack/core/fedmedian.h"
#include "fedtrack/core/fedprox.h"
#include "fedtrack/core/fedtrimmedavg.h"
#include "fedtrack/core/fedyogi.h"
#include "fedtrack/core/krum.h"
#include "fedtrack/core/qfedavg.h"

namespace fedtrack {

std::vector<std::string> strategy_names() {
  return {"bulyan",  "fedadagrad", "fedadam", "fedavg", "fedavgm", "fedmedian", "fedprox", "fedtrimmedavg",
          "fedyogi", "krum", "multikrum", "qfedavg"};
}

std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec, FedAvgOptions base) {
  base.accept_failures = spec.accept_failures;
  const std::string& n = spec.name;
  if (n == "fedavg") return std::make_unique<FedAvg>(std::move(base));
  if (n == "fedprox") return std::make_unique<FedProx>(std::move(base), spec.proximal_mu.value_or(0.0));
  if (n == "fedavgm") {
    return std::make_unique<FedAvgM>(std::move(base), spec.server_learning_rate.value_or(1.0),
                                     spec.server_momentum.value_or(0.0));
  }
  if (n == "fedadam" || n == "fedyogi" || n == "fedadagrad") {
    // Flower's defaults per strategy.
    FedOptOptions o;
    if (n == "fedadam") o = {1e-1, 1e-1, 0.9, 0.99, 1e-9};
    if (n == "fedyogi") o = {1e-2, 0.0316, 0.9, 0.99, 1e-3};
    if (n == "fedadagrad") o = {1e-1, 1e-1, 0.0, 0.0, 1e-9};
    o.eta = spec.eta.value_or(o.eta);
    o.eta_l = spec.eta_l.value_or(o.eta_l);
    o.beta_1 = spec.beta_1.value_or(o.beta_1);
    o.beta_2 = spec.beta_2.value_or(o.beta_2);
    o.tau = spec.tau.value_or(o.tau);
    if (n == "fedadam") return std::make_unique<FedAdam>(std::move(base), o);
    if (n == "fedyogi") return std::make_unique<FedYogi>(std::move(base), o);
    return std::make_unique<FedAdagrad>(std::move(base), o);
  }
  if (n == "fedmedian") return std::make_unique<FedMedian>(std::move(base));
  if (n == "fedtrimmedavg") return std::make_unique<FedTrimmedAvg>(std::move(base), spec.beta.value_or(0.2));
  if (n == "krum" || n == "multikrum") {
    const std::int64_t keep = spec.num_clients_to_keep.value_or(0);
    if (n == "multikrum" && keep < 1) {
      throw Error::invalid_argument("multikrum needs strategy.num_clients_to_keep >= 1");
    }
    return std::make_unique<Krum>(std::move(base), spec.num_malicious_clients.value_or(0), n == "krum" ? 0 : keep);
  }
  if (n == "bulyan") return std::make_unique<Bulyan>(std::move(base), spec.num_malicious_clients.value_or(0));
  if (n == "qfedavg") {
    return std::make_unique<QFedAvg>(std::move(base), spec.q.value_or(0.2), spec.client_learning_rate.value_or(0.1));
  }
  std::string known;
  for (const auto& k : strategy_names()) known += (known.empty() ? "" : ", ") + k;
  throw Error::not_found("unknown strategy '" + spec.name + "' (known: " + known + ")");
}

std::unique_ptr<Strategy> make_job_strategy(const JobSpec& job, FedAvgOptions base) {
  std::unique_ptr<Strategy> inner = make_strategy(job.strategy, std::move(base));
  const DpSpec& dp = job.privacy.dp;
  if (dp.mode.empty()) return inner;
  DpOptions o;
  o.noise_multiplier = dp.noise_multiplier;
  o.clipping_norm = dp.clipping_norm;
  o.delta = dp.delta;
  const auto count = static_cast<std::size_t>(std::max<std::int64_t>(job.clients.count, 1));
  const std::size_t sampled =
      clients_to_sample(count, job.clients.fraction_fit, static_cast<std::size_t>(std::max<std::int64_t>(job.clients.min_fit, 0)));
  o.num_sampled_clients = static_cast<std::int64_t>(std::max<std::size_t>(sampled, 1));
  o.sampling_rate = std::min(1.0, static_cast<double>(o.num_sampled_clients) / static_cast<double>(count));
  // Its own stream, apart from the client sampler's (seeded with job.seed).
  o.seed = job.seed ^ 0x4450'6e6f'6973'6521ull;
  o.target_clipped_quantile = dp.target_clipped_quantile.value_or(o.target_clipped_quantile);
  o.clip_norm_lr = dp.clip_norm_lr.value_or(o.clip_norm_lr);
  o.clipped_count_stddev = dp.clipped_count_stddev;
  if (dp.mode == "server_fixed") return std::make_unique<DpServerSideFixedClipping>(std::move(inner), o);
  if (dp.mode == "client_fixed") return std::make_unique<DpClientSideFixedClipping>(std::move(inner), o);
  if (dp.mode == "server_adaptive") return std::make_unique<DpServerSideAdaptiveClipping>(std::move(inner), o);
  if (dp.mode == "client_adaptive") return std::make_unique<DpClientSideAdaptiveClipping>(std::move(inner), o);
  std::string known;
  for (const auto& k : dp_mode_names()) known += (known.empty() ? "" : ", ") + k;
  throw Error::invalid_argument("unknown privacy.dp.mode '" + dp.mode + "' (known: " + known + ")");
}

}  // namespace fedtrack
