#include "fedtrack/core/strategy_registry.h"

#include <limits>

#include "fedtrack/core/error.h"

namespace fedtrack {

namespace {
constexpr double kMax = std::numeric_limits<double>::max();
}  // namespace

const std::vector<StrategyOptionDef>& strategy_option_defs() {
  static const std::vector<StrategyOptionDef> defs = {
      {"proximal_mu", &StrategySpec::proximal_mu, 0, kMax, false,
       "fedprox: weight of the proximal term (mu/2)||w - w_global||^2 each client adds to its loss"},
      {"server_learning_rate", &StrategySpec::server_learning_rate, 0, kMax, true,
       "fedavgm: server step on the pseudo-gradient"},
      {"server_momentum", &StrategySpec::server_momentum, 0, 1, false, "fedavgm: server momentum"},
      {"eta", &StrategySpec::eta, 0, kMax, true, "FedOpt family: server learning rate"},
      {"eta_l", &StrategySpec::eta_l, 0, kMax, true,
       "FedOpt family: client learning rate (recorded, not used: clients train with train.lr)"},
      {"beta_1", &StrategySpec::beta_1, 0, 0.999999, false, "fedadam, fedyogi: first-moment decay"},
      {"beta_2", &StrategySpec::beta_2, 0, 0.999999, false, "fedadam, fedyogi: second-moment decay"},
      {"tau", &StrategySpec::tau, 0, kMax, true, "FedOpt family: adaptivity (epsilon in the denominator)"},
      {"beta", &StrategySpec::beta, 0, 0.499999, false,
       "fedtrimmedavg: fraction cut at each end of every coordinate"},
      {"q", &StrategySpec::q, 0, kMax, false, "qfedavg: fairness exponent"},
      {"client_learning_rate", &StrategySpec::client_learning_rate, 0, kMax, true,
       "qfedavg: the clients' learning rate the update is scaled back by"},
      {"num_malicious_clients", &StrategySpec::num_malicious_clients, 0, 100000, false,
       "krum, multikrum, bulyan: Byzantine clients tolerated (f)"},
      {"num_clients_to_keep", &StrategySpec::num_clients_to_keep, 1, 100000, false,
       "multikrum: best-scored updates averaged (k)"},
  };
  return defs;
}

const std::vector<StrategyInfo>& strategy_registry() {
  // Flower's defaults (flwr/server/strategy/*.py).
  static const std::vector<StrategyInfo> registry = {
      {"bulyan", StrategyKind::kBulyan, {{"num_malicious_clients", 0.0}},
       "n - 2f updates picked by repeated Krum, then per coordinate the mean of the n - 4f closest to their median"},
      {"fedadagrad", StrategyKind::kFedAdagrad, {{"eta", 1e-1}, {"eta_l", 1e-1}, {"tau", 1e-9}},
       "Adagrad's second moment"},
      {"fedadam", StrategyKind::kFedAdam,
       {{"eta", 1e-1}, {"eta_l", 1e-1}, {"beta_1", 0.9}, {"beta_2", 0.99}, {"tau", 1e-9}},
       "adaptive server optimizer (Reddi et al.)"},
      {"fedavg", StrategyKind::kFedAvg, {}, "average weighted by num_examples"},
      {"fedavgm", StrategyKind::kFedAvgM, {{"server_learning_rate", 1.0}, {"server_momentum", 0.0}},
       "FedAvg with server momentum on the pseudo-gradient"},
      {"fedmedian", StrategyKind::kFedMedian, {}, "coordinate-wise median (unweighted)"},
      {"fedprox", StrategyKind::kFedProx, {{"proximal_mu", std::nullopt}},
       "FedAvg; each client adds (mu/2)||w - w_global||^2 to its loss"},
      {"fedtrimmedavg", StrategyKind::kFedTrimmedAvg, {{"beta", 0.2}},
       "coordinate-wise mean without the int(beta n) lowest and highest"},
      {"fedyogi", StrategyKind::kFedYogi,
       {{"eta", 1e-2}, {"eta_l", 0.0316}, {"beta_1", 0.9}, {"beta_2", 0.99}, {"tau", 1e-3}},
       "Yogi's second moment"},
      {"krum", StrategyKind::kKrum, {{"num_malicious_clients", 0.0}},
       "the update closest to its n - f - 2 nearest neighbours"},
      {"multikrum", StrategyKind::kMultiKrum, {{"num_malicious_clients", 0.0}, {"num_clients_to_keep", std::nullopt}},
       "weighted average of the k best Krum scores"},
      {"qfedavg", StrategyKind::kQFedAvg, {{"q", 0.2}, {"client_learning_rate", 0.1}},
       "q-FFL: clients with a higher train_loss weigh more"},
  };
  return registry;
}

const StrategyOption* StrategyInfo::option(const std::string& key) const {
  for (const auto& o : options) {
    if (key == o.key) return &o;
  }
  return nullptr;
}

const StrategyInfo* find_strategy(const std::string& name) {
  for (const auto& info : strategy_registry()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& info : strategy_registry()) names.emplace_back(info.name);
  return names;
}

double strategy_option(const StrategyInfo& info, const StrategySpec& spec, const std::string& key) {
  const StrategyOption* option = info.option(key);
  if (option == nullptr) {
    throw Error::invalid_argument(std::string("strategy.") + key + " is not an option of strategy '" + info.name + "'");
  }
  for (const auto& def : strategy_option_defs()) {
    if (key != def.key) continue;
    std::optional<double> value;
    if (auto d = std::get_if<std::optional<double> StrategySpec::*>(&def.member)) {
      value = spec.**d;
    } else if (const auto& i = spec.*std::get<std::optional<std::int64_t> StrategySpec::*>(def.member)) {
      value = static_cast<double>(*i);
    }
    if (value) return *value;
    if (option->flower_default) return *option->flower_default;
    throw Error::invalid_argument(std::string(info.name) + " needs strategy." + key);
  }
  throw Error::invalid_argument(std::string("strategy.") + key + " is not a strategy option");
}

}  // namespace fedtrack
