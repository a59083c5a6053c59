#include "fedtrack/core/dp_wrapper.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "dp_clipping.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

// Client-side modes: slack for a client's own float rounding before the
// server re-clips an update.
constexpr double kClientClipSlack = 1e-5;

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

DpWrapper::DpWrapper(std::unique_ptr<Strategy> inner, DpOptions options, Side side, bool adaptive)
    : inner_(std::move(inner)),
      options_(options),
      side_(side),
      adaptive_(adaptive),
      model_noise_multiplier_(options.noise_multiplier),
      clipping_norm_(options.clipping_norm),
      rng_(options.seed),
      accountant_(std::min(std::max(options.sampling_rate, 0.0), 1.0), std::max(options.noise_multiplier, 0.0)) {
  if (!inner_) throw Error::invalid_argument("dp: no strategy to wrap");
  const auto& o = options_;
  if (!(o.noise_multiplier > 0 && std::isfinite(o.noise_multiplier))) {
    throw Error::invalid_argument("dp: noise_multiplier must be > 0");
  }
  if (!(o.clipping_norm > 0 && std::isfinite(o.clipping_norm))) {
    throw Error::invalid_argument("dp: clipping_norm must be > 0");
  }
  if (o.num_sampled_clients < 1) throw Error::invalid_argument("dp: num_sampled_clients must be >= 1");
  if (!(o.sampling_rate > 0 && o.sampling_rate <= 1)) throw Error::invalid_argument("dp: sampling rate must be in (0, 1]");
  if (!(o.delta > 0 && o.delta < 1)) throw Error::invalid_argument("dp: delta must be in (0, 1)");
  if (!adaptive_) return;
  if (!(o.target_clipped_quantile >= 0 && o.target_clipped_quantile <= 1)) {
    throw Error::invalid_argument("dp: target_clipped_quantile must be in [0, 1]");
  }
  if (!(o.clip_norm_lr > 0)) throw Error::invalid_argument("dp: clip_norm_lr must be > 0");
  // Andrew et al.: the model noise z and the count noise s together act as
  // one Gaussian mechanism of multiplier sigma: sigma^-2 = z^-2 + (2 s)^-2.
  count_stddev_ = o.clipped_count_stddev.value_or(static_cast<double>(o.num_sampled_clients) / 20.0);
  if (!(count_stddev_ > 0)) throw Error::invalid_argument("dp: clipped_count_stddev must be > 0");
  if (o.noise_multiplier >= 2 * count_stddev_) {
    throw Error::invalid_argument("dp: noise_multiplier " + number(o.noise_multiplier) +
                                  " must be below 2 * clipped_count_stddev = " + number(2 * count_stddev_) +
                                  " (clipped_count_stddev defaults to sampled clients / 20; raise it)");
  }
  model_noise_multiplier_ =
      std::pow(std::pow(o.noise_multiplier, -2.0) - std::pow(2 * count_stddev_, -2.0), -0.5);
}

std::string DpWrapper::name() const {
  const char* mode = side_ == Side::kServer ? (adaptive_ ? "server_adaptive" : "server_fixed")
                                            : (adaptive_ ? "client_adaptive" : "client_fixed");
  return inner_->name() + "+dp_" + mode;
}

std::optional<Parameters> DpWrapper::initialize_parameters(ClientManager& clients) {
  return inner_->initialize_parameters(clients);
}

std::vector<FitInstruction> DpWrapper::configure_fit(int round, std::shared_ptr<const Parameters> global,
                                                     ClientManager& clients) {
  global_ = global;
  auto instructions = inner_->configure_fit(round, std::move(global), clients);
  if (side_ == Side::kClient) {
    for (auto& i : instructions) i.ins.config[kDpClippingNormKey] = clipping_norm_;
  }
  return instructions;
}

AggregateFitOutcome DpWrapper::aggregate_fit(int round, const std::vector<FitResult>& results,
                                             const std::vector<ClientFailure>& failures) {
  const double norm = clipping_norm_;  // the norm of this round's clipping and noise
  AggregateFitOutcome out;
  if (!failures.empty() || results.empty()) {
    out.metrics = {{"dp_epsilon", epsilon()}, {"dp_clipping_norm", norm}};
    return out;
  }
  if (!global_) throw Error::failed_precondition(name() + ": aggregate_fit before configure_fit");
  std::vector<FitResult> clipped;
  clipped.reserve(results.size());
  std::int64_t clipped_count = 0;
  const double n = static_cast<double>(results.size());
  for (const auto& r : results) {
    FitResult c;
    c.client_id = r.client_id;
    c.transfer = r.transfer;
    c.res.data_fingerprint = r.res.data_fingerprint;
    c.res.num_examples = 1;  // equal weights: no client moves the mean by more than norm / n
    c.res.metrics = r.res.metrics;
    const auto bit = c.res.metrics.find(kDpNormBitKey);
    if (side_ == Side::kClient && adaptive_) {
      if (bit == c.res.metrics.end()) {
        throw Error::invalid_argument("client " + r.client_id + " did not report " + kDpNormBitKey +
                                      " (client_adaptive needs clients that clip their updates)");
      }
      if (bit->second != 0) ++clipped_count;
    }
    if (bit != c.res.metrics.end()) c.res.metrics.erase(bit);  // an exact count is not for the metrics
    if (side_ == Side::kServer) {
      ClippedModel m = clip_model_update(r.res.parameters, *global_, norm);
      clipped_count += m.clipped ? 1 : 0;
      c.res.parameters = std::move(m.model);
    } else {
      ClippedModel m = clip_model_update(r.res.parameters, *global_, norm * (1 + kClientClipSlack));
      c.res.parameters = m.clipped ? clip_model_update(r.res.parameters, *global_, norm).model : std::move(m.model);
    }
    // Each clipped model gets N(0, (z C / sqrt(n))^2): their equal-weight mean
    // carries exactly N(0, (z C / n)^2), and every strategy downstream (a
    // server optimizer's moments included) only ever sees noisy updates.
    add_gaussian_noise(c.res.parameters, model_noise_multiplier_ * norm / std::sqrt(n), rng_);
    clipped.push_back(std::move(c));
  }
  AggregateFitOutcome inner = inner_->aggregate_fit(round, clipped, failures);
  if (adaptive_) {
    // Noisy fraction of clipped updates; more clipped than the target moves
    // the norm up, fewer moves it down.
    std::normal_distribution<double> count_noise(0.0, count_stddev_);
    const double fraction = (static_cast<double>(clipped_count) + count_noise(rng_)) / n;
    clipping_norm_ = norm * std::exp(options_.clip_norm_lr * (fraction - options_.target_clipped_quantile));
  }
  out.metrics = std::move(inner.metrics);
  if (inner.parameters) {
    out.parameters = std::move(inner.parameters);
    accountant_.compose(1);
  }
  out.metrics["dp_epsilon"] = epsilon();
  out.metrics["dp_clipping_norm"] = norm;
  return out;
}

std::vector<EvaluateInstruction> DpWrapper::configure_evaluate(int round, std::shared_ptr<const Parameters> global,
                                                               ClientManager& clients) {
  return inner_->configure_evaluate(round, std::move(global), clients);
}

AggregateEvaluateOutcome DpWrapper::aggregate_evaluate(int round, const std::vector<EvaluateResult>& results,
                                                       const std::vector<ClientFailure>& failures) {
  return inner_->aggregate_evaluate(round, results, failures);
}

std::optional<CentralEvaluation> DpWrapper::evaluate(int round, const Parameters& global) {
  return inner_->evaluate(round, global);
}

StateRecord DpWrapper::save_state() const {
  StateRecord state;
  state["dp.clipping_norm"] = encode_f64(clipping_norm_);
  state["dp.rng"] = encode_rng(rng_);
  state["dp.rounds_accounted"] = std::to_string(accountant_.rounds());
  nest(state, "inner.", inner_->save_state());
  return state;
}

void DpWrapper::restore_state(const Parameters& global, const StateRecord& state) {
  inner_->restore_state(global, unnest(state, "inner."));
  if (state.empty()) return;  // saved before any round: the constructor's state is the saved one
  const double norm = decode_f64(state_at(state, "dp.clipping_norm"));
  if (!(norm > 0) || !std::isfinite(norm)) throw Error::corruption(name() + " state: clipping norm " + number(norm));
  std::int64_t rounds = 0;
  const std::string& text = state_at(state, "dp.rounds_accounted");
  try {
    std::size_t used = 0;
    rounds = std::stoll(text, &used);
    if (used != text.size() || rounds < 0) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw Error::corruption(name() + " state: rounds accounted '" + text + "'");
  }
  rng_ = decode_rng(state_at(state, "dp.rng"));
  clipping_norm_ = norm;
  accountant_ = RdpAccountant(std::min(std::max(options_.sampling_rate, 0.0), 1.0), options_.noise_multiplier);
  accountant_.compose(rounds);
}

}  // namespace fedtrack
