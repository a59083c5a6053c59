// DpWrapper — central differential privacy around any Strategy, the common
// part of Flower's four DP wrappers (dp_fixed_clipping.h,
// dp_adaptive_clipping.h hold the four named variants).
//
// Each round: every client's update (model - global) is clipped to L2 norm C
// (by the server, or by the client when C travels in the fit config), and the
// wrapped strategy aggregates the clipped models with equal weights, so that
// a mean of them moves by at most C / n per client (n = clients aggregated)
// and carries Gaussian noise of stddev z * C / n on every floating tensor —
// Flower's noise. Adaptive modes then move C geometrically towards the norm
// below which a target fraction of updates falls, from a noisy count of the
// clipped updates (Andrew et al. 2021).
//
// Departures from Flower, each to keep the reported epsilon true:
//  - the noise goes on the clipped models before the inner strategy sees
//    them (z * C / sqrt(n) each, so exactly z * C / n on their mean), not on
//    the inner strategy's output: Flower's order lets a server optimizer
//    (FedAvgM, FedAdam, ...) keep its momentum and its own copy of the model
//    from noise-free averages, and publish that noise-free trajectory plus
//    fresh noise each round; here the optimizer only ever sees noisy
//    updates, so everything after the noise is post-processing. (This also
//    keeps the inner strategy's model equal to the published one, which a
//    resumed job needs.) The epsilon covers strategies whose aggregate is a
//    mean of the updates: fedavg, fedprox, fedavgm, fedadam, fedyogi,
//    fedadagrad. Robust aggregators (fedmedian, fedtrimmedavg, krum,
//    multikrum, bulyan) and qfedavg compose, but their sensitivity to one
//    client is not C / n and the reported epsilon does not bound them;
//  - clients are weighted equally (num_examples is set to 1 before the inner
//    strategy sees the results); noise z*C/n only covers a mean in which no
//    client weighs more than 1/n;
//  - adaptive modes add this round's noise with the norm the updates were
//    clipped to (Flower uses the already-updated norm), and the norm moves up
//    when more than target_clipped_quantile of the updates were clipped
//    (Flower's sign moves it the other way, away from the target);
//  - client-side modes re-clip on the server any update above C (plus 1e-5
//    relative, for the client's float rounding), so a client that did not
//    clip cannot void the guarantee.
// Like Flower, a round with any failure releases nothing (the global model
// stays) and is not accounted.
//
// After every round the wrapper adds to the inner strategy's fit metrics
// dp_epsilon (RdpAccountant: Poisson rate q, noise multiplier sigma, over the
// rounds released so far, at delta) and dp_clipping_norm (the norm this
// round's updates were clipped to). The inner strategy never sees the
// clients' dp_norm_bit. Not thread-safe; the server calls it from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "fedtrack/core/rdp_accountant.h"
#include "fedtrack/core/strategy.h"

namespace fedtrack {

struct DpOptions {
  double noise_multiplier = 1.0;  // sigma, > 0: noise stddev / sensitivity of the whole round
  double clipping_norm = 1.0;     // C (the initial C in adaptive modes), > 0
  std::int64_t num_sampled_clients = 1;  // clients sampled per round (adaptive: count-noise default)
  double sampling_rate = 1.0;     // q for the accountant, in (0, 1]
  double delta = 1e-5;            // the delta dp_epsilon is reported at, in (0, 1)
  std::uint64_t seed = 0;         // seeds the noise RNG
  // Adaptive modes only (Flower's defaults).
  double target_clipped_quantile = 0.5;        // fraction of updates meant to be clipped, [0, 1]
  double clip_norm_lr = 0.2;                   // > 0
  std::optional<double> clipped_count_stddev;  // unset: num_sampled_clients / 20
};

class DpWrapper : public Strategy {
 public:
  enum class Side { kServer, kClient };

  // Error(kInvalidArgument) naming the option for a value out of range; in
  // adaptive modes also when noise_multiplier >= 2 * clipped_count_stddev
  // (the count's noise alone would exceed the whole budget).
  DpWrapper(std::unique_ptr<Strategy> inner, DpOptions options, Side side, bool adaptive);

  std::string name() const override;
  std::optional<Parameters> initialize_parameters(ClientManager& clients) override;
  std::vector<FitInstruction> configure_fit(int round, std::shared_ptr<const Parameters> global,
                                            ClientManager& clients) override;
  AggregateFitOutcome aggregate_fit(int round, const std::vector<FitResult>& results,
                                    const std::vector<ClientFailure>& failures) override;
  std::vector<EvaluateInstruction> configure_evaluate(int round, std::shared_ptr<const Parameters> global,
                                                      ClientManager& clients) override;
  AggregateEvaluateOutcome aggregate_evaluate(int round, const std::vector<EvaluateResult>& results,
                                              const std::vector<ClientFailure>& failures) override;
  std::optional<CentralEvaluation> evaluate(int round, const Parameters& global) override;

  // The clipping norm, noise RNG and rounds accounted, plus the inner
  // strategy's state under "inner.".
  StateRecord save_state() const override;
  void restore_state(const Parameters& global, const StateRecord& state) override;

  double clipping_norm() const { return clipping_norm_; }
  // The noise multiplier applied to the model (adaptive: smaller than sigma,
  // the rest of the budget goes to the clipped count).
  double model_noise_multiplier() const { return model_noise_multiplier_; }
  double epsilon() const { return accountant_.epsilon(options_.delta); }
  const Strategy& inner() const { return *inner_; }

 private:
  std::unique_ptr<Strategy> inner_;
  DpOptions options_;
  Side side_;
  bool adaptive_;
  double model_noise_multiplier_;
  double count_stddev_ = 0;
  double clipping_norm_;
  std::mt19937_64 rng_;
  RdpAccountant accountant_;
  std::shared_ptr<const Parameters> global_;  // this round's global model, from configure_fit
};

}  // namespace fedtrack
