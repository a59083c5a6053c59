// Replays client updates through a fedtrack strategy, for comparing with
// another implementation (tests/integration/test_strategies_vs_flower.py).
//
//   strategy_replay < input.json > output.json
// input:  {"strategy": {"name": "fedadam", "eta": 0.1, ...},
//          "initial": [{"shape": [...], "data": [...]}, ...],
//          "rounds": [[{"num_examples": n, "tensors": [{"shape", "data"}, ...]}, ...], ...]}
// output: {"rounds": [[[flat values of tensor 0], [tensor 1], ...], ...]}  (null: no new model)
#include <nlohmann/json.hpp>

#include <iostream>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/strategy_factory.h"

namespace {

using json = nlohmann::json;

fedtrack::Parameters read_parameters(const json& tensors) {
  fedtrack::Parameters p;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto shape = tensors[i].at("shape").get<std::vector<std::int64_t>>();
    const auto data = tensors[i].at("data").get<std::vector<float>>();
    p.names.push_back("t" + std::to_string(i));
    p.tensors.push_back(torch::tensor(data, torch::kFloat).reshape(shape));
  }
  p.buffer_begin = p.size();
  return p;
}

std::optional<double> number(const json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  return j.at(key).get<double>();
}

}  // namespace

int main() {
  try {
    const json in = json::parse(std::cin);
    const json& s = in.at("strategy");
    fedtrack::StrategySpec spec;
    spec.name = s.at("name").get<std::string>();
    spec.proximal_mu = number(s, "proximal_mu");
    spec.server_learning_rate = number(s, "server_learning_rate");
    spec.server_momentum = number(s, "server_momentum");
    spec.eta = number(s, "eta");
    spec.eta_l = number(s, "eta_l");
    spec.beta_1 = number(s, "beta_1");
    spec.beta_2 = number(s, "beta_2");
    spec.tau = number(s, "tau");
    spec.beta = number(s, "beta");
    spec.q = number(s, "q");
    spec.client_learning_rate = number(s, "client_learning_rate");
    if (s.contains("num_malicious_clients")) spec.num_malicious_clients = s.at("num_malicious_clients").get<std::int64_t>();
    if (s.contains("num_clients_to_keep")) spec.num_clients_to_keep = s.at("num_clients_to_keep").get<std::int64_t>();
    fedtrack::FedAvgOptions base;
    base.initial_parameters = read_parameters(in.at("initial"));
    auto strategy = fedtrack::make_strategy(spec, std::move(base));
    fedtrack::ClientManager clients(0);
    strategy->initialize_parameters(clients);
    json out = {{"rounds", json::array()}};
    int round = 0;
    for (const auto& updates : in.at("rounds")) {
      ++round;
      std::vector<fedtrack::FitResult> results;
      for (std::size_t c = 0; c < updates.size(); ++c) {
        fedtrack::FitResult r;
        r.client_id = "c" + std::to_string(c);
        r.res.parameters = read_parameters(updates[c].at("tensors"));
        r.res.num_examples = updates[c].at("num_examples").get<std::int64_t>();
        if (updates[c].contains("train_loss")) r.res.metrics["train_loss"] = updates[c].at("train_loss").get<double>();
        results.push_back(std::move(r));
      }
      const auto outcome = strategy->aggregate_fit(round, results, {});
      if (!outcome.parameters) {
        out["rounds"].push_back(nullptr);
        continue;
      }
      json tensors = json::array();
      for (const auto& t : outcome.parameters->tensors) {
        const torch::Tensor flat = t.contiguous().reshape({-1}).to(torch::kDouble);
        tensors.push_back(std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel()));
      }
      out["rounds"].push_back(tensors);
    }
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "strategy_replay: " << e.what() << std::endl;
    return 1;
  }
}
