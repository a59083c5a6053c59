// FedAvg (McMahan et al., 2017): the new global model is the average of the
// client models weighted by num_examples. The base the other strategies
// build on. Not thread-safe; the server calls it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "fedtrack/core/strategy.h"

namespace fedtrack {

struct FedAvgOptions {
  double fraction_fit = 1.0;
  double fraction_evaluate = 1.0;
  std::int64_t min_fit_clients = 2;
  std::int64_t min_evaluate_clients = 2;
  std::int64_t min_available_clients = 2;
  // false: a round with any failure keeps the previous global model.
  bool accept_failures = true;
  // Config sent to every sampled client for a round (e.g. epochs, lr).
  std::function<ConfigRecord(int round)> on_fit_config;
  std::function<ConfigRecord(int round)> on_evaluate_config;
  // Centralized evaluation; unset = none.
  std::function<std::optional<CentralEvaluation>(int round, const Parameters&)> evaluate_fn;
  // Skip federated evaluation when false.
  bool federated_evaluation = true;
  std::optional<Parameters> initial_parameters;
};

class FedAvg : public Strategy {
 public:
  explicit FedAvg(FedAvgOptions options);

  std::string name() const override { return "fedavg"; }
  std::optional<Parameters> initialize_parameters(ClientManager& clients) override;
  std::vector<FitInstruction> configure_fit(int round, std::shared_ptr<const Parameters> global,
                                            ClientManager& clients) override;
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;
  std::vector<EvaluateInstruction> configure_evaluate(int round,
                                                      std::shared_ptr<const Parameters> global,
                                                      ClientManager& clients) override;
  AggregateEvaluateOutcome aggregate_evaluate(int round, const std::vector<EvaluateResult>& results,
                                              const std::vector<ClientFailure>& failures) override;
  std::optional<CentralEvaluation> evaluate(int round, const Parameters& global) override;
  // A WeightedSum (aggregate.h) of the updates by num_examples; nullptr
  // when folds_updates() is false. aggregate_fit folds the same way, so
  // both paths give the same bytes.
  std::unique_ptr<UpdateFold> begin_fit_fold(int round, const Parameters& global) override;
  AggregateFitOutcome finish_fit_fold(int round, UpdateFold& fold, const std::vector<FitResult>& results,
                                      const std::vector<ClientFailure>& failures) override;

 protected:
  // Whether aggregation is the weighted-average fold (then the server
  // streams updates into it). A subclass whose aggregate_fit needs all
  // updates at once returns false.
  virtual bool folds_updates() const { return true; }
  // The server-side step after averaging (FedAvgM, FedOpt); `out` holds
  // the average. Identity for FedAvg.
  virtual AggregateFitOutcome server_step(int round, AggregateFitOutcome out) {
    (void)round;
    return out;
  }
  const FedAvgOptions& options() const { return options_; }
  // Whether a round with these outcomes is aggregated at all (results, and no
  // failures unless accept_failures).
  bool accepts(const std::vector<FitResult>& results, const std::vector<ClientFailure>& failures) const;
  // The clients' fit metrics, weighted by num_examples.
  static Metrics fit_metrics(const std::vector<FitResult>& results);

 private:
  FedAvgOptions options_;
};

}  // namespace fedtrack
