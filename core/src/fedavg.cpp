#include "fedtrack/core/fedavg.h"

#include "fedtrack/core/aggregate.h"
#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

template <typename Instruction, typename Ins>
std::vector<Instruction> plan(ClientManager& clients, double fraction, std::int64_t minimum,
                              std::int64_t min_available, const Ins& ins) {
  const std::size_t n = clients_to_sample(clients.num_available(), fraction,
                                          static_cast<std::size_t>(minimum));
  std::vector<Instruction> out;
  for (auto& client : clients.sample(n, static_cast<std::size_t>(min_available))) {
    out.push_back({client, ins});
  }
  return out;
}

}  // namespace

FedAvg::FedAvg(FedAvgOptions options) : options_(std::move(options)) {
  if (!(options_.fraction_fit > 0 && options_.fraction_fit <= 1)) {
    throw Error::invalid_argument("fedavg: fraction_fit must be in (0, 1]");
  }
  if (!(options_.fraction_evaluate >= 0 && options_.fraction_evaluate <= 1)) {
    throw Error::invalid_argument("fedavg: fraction_evaluate must be in [0, 1]");
  }
}

std::optional<Parameters> FedAvg::initialize_parameters(ClientManager&) {
  auto initial = std::move(options_.initial_parameters);
  options_.initial_parameters.reset();  // do not keep a second copy alive
  return initial;
}

std::vector<FitInstruction> FedAvg::configure_fit(int round, std::shared_ptr<const Parameters> global,
                                                  ClientManager& clients) {
  const ConfigRecord config = options_.on_fit_config ? options_.on_fit_config(round) : ConfigRecord{};
  return plan<FitInstruction>(clients, options_.fraction_fit, options_.min_fit_clients,
                              options_.min_available_clients, FitIns{global, config});
}

bool FedAvg::accepts(const std::vector<FitResult>& results, const std::vector<ClientFailure>& failures) const {
  return !results.empty() && (failures.empty() || options_.accept_failures);
}

Metrics FedAvg::fit_metrics(const std::vector<FitResult>& results) {
  std::vector<std::pair<const Metrics*, double>> metrics;
  for (const auto& r : results) metrics.emplace_back(&r.res.metrics, static_cast<double>(r.res.num_examples));
  return weighted_metrics_average(metrics);
}

namespace {
// FedAvg's fold: the updates weighted by num_examples.
class WeightedFold : public UpdateFold {
 public:
  explicit WeightedFold(const Parameters& layout) : sum(layout) {}
  void add(const FitResult& r) override { sum.add(r.res.parameters, static_cast<double>(r.res.num_examples)); }
  WeightedSum sum;
};
}  // namespace

std::unique_ptr<UpdateFold> FedAvg::begin_fit_fold(int, const Parameters& global) {
  if (!folds_updates()) return nullptr;
  return std::make_unique<WeightedFold>(global);
}

AggregateFitOutcome FedAvg::finish_fit_fold(int round, UpdateFold& fold, const std::vector<FitResult>& results,
                                            const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  auto* weighted = dynamic_cast<WeightedFold*>(&fold);
  if (!weighted) throw Error::invalid_argument(name() + ": finish_fit_fold with a fold it did not begin");
  if (weighted->sum.count() != results.size()) {
    throw Error::failed_precondition(name() + ": " + std::to_string(weighted->sum.count()) + " updates folded for " +
                                     std::to_string(results.size()) + " results");
  }
  out.parameters = weighted->sum.take_average();
  out.metrics = fit_metrics(results);
  return server_step(round, std::move(out));
}

AggregateFitOutcome FedAvg::aggregate_fit(int round, const std::vector<FitResult>& results,
                                          const std::vector<ClientFailure>& failures) {
  if (!accepts(results, failures)) return {};
  WeightedFold fold(results.front().res.parameters);
  for (const auto& r : results) fold.add(r);
  return FedAvg::finish_fit_fold(round, fold, results, failures);
}

std::vector<EvaluateInstruction> FedAvg::configure_evaluate(int round,
                                                            std::shared_ptr<const Parameters> global,
                                                            ClientManager& clients) {
  if (!options_.federated_evaluation || options_.fraction_evaluate == 0) return {};
  const ConfigRecord config =
      options_.on_evaluate_config ? options_.on_evaluate_config(round) : ConfigRecord{};
  return plan<EvaluateInstruction>(clients, options_.fraction_evaluate, options_.min_evaluate_clients,
                                   options_.min_available_clients, EvaluateIns{global, config});
}

AggregateEvaluateOutcome FedAvg::aggregate_evaluate(int, const std::vector<EvaluateResult>& results,
                                                    const std::vector<ClientFailure>& failures) {
  AggregateEvaluateOutcome out;
  if (results.empty()) return out;
  if (!failures.empty() && !options_.accept_failures) return out;
  std::vector<std::pair<double, double>> losses;
  std::vector<std::pair<const Metrics*, double>> metrics;
  for (const auto& r : results) {
    losses.emplace_back(r.res.loss, static_cast<double>(r.res.num_examples));
    metrics.emplace_back(&r.res.metrics, static_cast<double>(r.res.num_examples));
  }
  out.loss = weighted_mean(losses);
  out.metrics = weighted_metrics_average(metrics);
  return out;
}

std::optional<CentralEvaluation> FedAvg::evaluate(int round, const Parameters& global) {
  if (!options_.evaluate_fn) return std::nullopt;
  return options_.evaluate_fn(round, global);
}

}  // namespace fedtrack
