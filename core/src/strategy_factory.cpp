#include "fedtrack/core/strategy_factory.h"

#include "fedtrack/core/error.h"

namespace fedtrack {

std::vector<std::string> strategy_names() { return {"fedavg"}; }

std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec, FedAvgOptions base) {
  base.accept_failures = spec.accept_failures;
  if (spec.name == "fedavg") return std::make_unique<FedAvg>(std::move(base));
  std::string known;
  for (const auto& n : strategy_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error::not_found("unknown strategy '" + spec.name + "' (known: " + known + ")");
}

}  // namespace fedtrack
