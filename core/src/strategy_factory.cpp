#include "fedtrack/core/strategy_factory.h"

#include "fedtrack/core/bulyan.h"
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

}  // namespace fedtrack
