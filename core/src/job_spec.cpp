#include "fedtrack/core/job_spec.h"

namespace fedtrack {

std::vector<std::string> dp_mode_names() {
  return {"server_fixed", "server_adaptive", "client_fixed", "client_adaptive"};
}

bool dp_epsilon_bounds(const std::string& strategy_name) {
  for (const char* averaging : {"fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad"}) {
    if (strategy_name == averaging) return true;
  }
  return false;
}

bool secure_aggregation_composes(const std::string& strategy_name) { return dp_epsilon_bounds(strategy_name); }

bool aggregates_sparse_updates(const std::string& strategy_name) {
  for (const char* robust : {"fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"}) {
    if (strategy_name == robust) return false;
  }
  return true;
}

std::string JobSpec::where(const std::string& key) const {
  auto it = sources.find(key);
  if (it == sources.end() || it->second.empty()) return "";
  return it->second + ": ";
}

}  // namespace fedtrack
