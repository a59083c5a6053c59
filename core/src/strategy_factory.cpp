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

std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec, FedAvgOptions base) {
  const StrategyInfo* info = find_strategy(spec.name);
  if (info == nullptr) {
    std::string known;
    for (const auto& k : strategy_names()) known += (known.empty() ? "" : ", ") + k;
    throw Error::not_found("unknown strategy '" + spec.name + "' (known: " + known + ")");
  }
  base.accept_failures = spec.accept_failures;
  // Every option value: the job's, else the registry's Flower default.
  auto option = [&](const char* key) { return strategy_option(*info, spec, key); };
  auto count = [&](const char* key) { return static_cast<std::int64_t>(option(key)); };
  auto fedopt = [&](bool has_betas) {
    FedOptOptions o;
    o.eta = option("eta");
    o.eta_l = option("eta_l");
    o.beta_1 = has_betas ? option("beta_1") : 0.0;  // FedAdagrad has no moments' decay
    o.beta_2 = has_betas ? option("beta_2") : 0.0;
    o.tau = option("tau");
    return o;
  };
  switch (info->kind) {
    case StrategyKind::kFedAvg:
      return std::make_unique<FedAvg>(std::move(base));
    case StrategyKind::kFedProx:
      return std::make_unique<FedProx>(std::move(base), option("proximal_mu"));
    case StrategyKind::kFedAvgM:
      return std::make_unique<FedAvgM>(std::move(base), option("server_learning_rate"), option("server_momentum"));
    case StrategyKind::kFedAdam:
      return std::make_unique<FedAdam>(std::move(base), fedopt(true));
    case StrategyKind::kFedYogi:
      return std::make_unique<FedYogi>(std::move(base), fedopt(true));
    case StrategyKind::kFedAdagrad:
      return std::make_unique<FedAdagrad>(std::move(base), fedopt(false));
    case StrategyKind::kFedMedian:
      return std::make_unique<FedMedian>(std::move(base));
    case StrategyKind::kFedTrimmedAvg:
      return std::make_unique<FedTrimmedAvg>(std::move(base), option("beta"));
    case StrategyKind::kKrum:
      return std::make_unique<Krum>(std::move(base), count("num_malicious_clients"), 0);
    case StrategyKind::kMultiKrum: {
      const std::int64_t keep = spec.num_clients_to_keep.value_or(0);
      if (keep < 1) throw Error::invalid_argument("multikrum needs strategy.num_clients_to_keep >= 1");
      return std::make_unique<Krum>(std::move(base), count("num_malicious_clients"), keep);
    }
    case StrategyKind::kBulyan:
      return std::make_unique<Bulyan>(std::move(base), count("num_malicious_clients"));
    case StrategyKind::kQFedAvg:
      return std::make_unique<QFedAvg>(std::move(base), option("q"), option("client_learning_rate"));
  }
  throw Error::invalid_argument("strategy '" + spec.name + "' has no factory");
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
