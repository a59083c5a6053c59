#include "fedtrack/core/qfedavg.h"

#include <cmath>

#include "fedtrack/core/error.h"

namespace fedtrack {

QFedAvg::QFedAvg(FedAvgOptions options, double q, double client_learning_rate)
    : FedAvg(std::move(options)), q_(q), lr_(client_learning_rate) {
  if (q_ < 0) throw Error::invalid_argument("qfedavg: q must be >= 0");
  if (!(lr_ > 0)) throw Error::invalid_argument("qfedavg: client_learning_rate must be > 0");
}

std::optional<Parameters> QFedAvg::initialize_parameters(ClientManager& clients) {
  auto initial = FedAvg::initialize_parameters(clients);
  if (initial) before_ = std::make_shared<const Parameters>(clone(*initial));
  return initial;
}

std::vector<FitInstruction> QFedAvg::configure_fit(int round, std::shared_ptr<const Parameters> global,
                                                   ClientManager& clients) {
  before_ = global;
  return FedAvg::configure_fit(round, std::move(global), clients);
}

AggregateFitOutcome QFedAvg::aggregate_fit(int, const std::vector<FitResult>& results,
                                           const std::vector<ClientFailure>& failures) {
  AggregateFitOutcome out;
  if (!accepts(results, failures)) return out;
  if (!before_) throw Error::failed_precondition("qfedavg: no global model to start from");
  torch::NoGradGuard no_grad;
  const Parameters& w = *before_;
  std::vector<torch::Tensor> sum_delta;
  for (const auto& t : w.tensors) sum_delta.push_back(torch::zeros_like(t, t.options().dtype(torch::kDouble)));
  double sum_h = 0;
  for (const auto& r : results) {
    auto it = r.res.metrics.find("train_loss");
    if (it == r.res.metrics.end() || !std::isfinite(it->second)) {
      throw Error::invalid_argument("qfedavg: client " + r.client_id + " reported no finite train_loss");
    }
    const double loss = it->second + 1e-10;
    double grad_norm2 = 0;
    std::vector<torch::Tensor> grads;
    for (std::size_t i = 0; i < w.size(); ++i) {
      grads.push_back((w.tensors[i].to(torch::kDouble) - r.res.parameters.tensors[i].to(torch::kDouble)) / lr_);
      grad_norm2 += grads.back().pow(2).sum().item<double>();
    }
    const double lq = std::pow(loss, q_);
    for (std::size_t i = 0; i < w.size(); ++i) sum_delta[i] += grads[i] * lq;
    sum_h += q_ * std::pow(loss, q_ - 1) * grad_norm2 + lq / lr_;
  }
  Parameters next;
  next.names = w.names;
  next.buffer_begin = w.buffer_begin;
  for (std::size_t i = 0; i < w.size(); ++i) {
    next.tensors.push_back((w.tensors[i].to(torch::kDouble) - sum_delta[i] / sum_h).to(w.tensors[i].scalar_type()));
  }
  before_ = std::make_shared<const Parameters>(clone(next));  // the next round starts here
  out.parameters = std::move(next);
  out.metrics = fit_metrics(results);
  return out;
}

}  // namespace fedtrack
