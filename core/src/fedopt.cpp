#include "fedtrack/core/fedopt.h"

#include "fedtrack/core/error.h"

namespace fedtrack {

FedOpt::FedOpt(FedAvgOptions options, FedOptOptions opt) : FedAvg(std::move(options)), opt_(opt) {
  if (!(opt_.eta > 0)) throw Error::invalid_argument("fedopt: eta must be > 0");
  if (!(opt_.tau > 0)) throw Error::invalid_argument("fedopt: tau must be > 0");
  if (opt_.beta_1 < 0 || opt_.beta_1 >= 1 || opt_.beta_2 < 0 || opt_.beta_2 >= 1) {
    throw Error::invalid_argument("fedopt: beta_1 and beta_2 must be in [0, 1)");
  }
}

std::optional<Parameters> FedOpt::initialize_parameters(ClientManager& clients) {
  auto initial = FedAvg::initialize_parameters(clients);
  if (initial) current_ = clone(*initial);
  return initial;
}

AggregateFitOutcome FedOpt::server_step(int round, AggregateFitOutcome out) {
  if (!out.parameters) return out;
  if (!current_) throw Error::failed_precondition(name() + ": server-side optimization needs initial parameters");
  torch::NoGradGuard no_grad;
  const Parameters& avg = *out.parameters;
  if (m_.empty()) {
    for (const auto& t : avg.tensors) {
      m_.push_back(torch::zeros_like(t, t.is_floating_point() ? t.options() : t.options().dtype(torch::kFloat)));
      v_.push_back(torch::zeros_like(m_.back()));
    }
  }
  const double eta = step(round);
  for (std::size_t i = 0; i < avg.size(); ++i) {
    auto& w = current_->tensors[i];
    if (!w.is_floating_point()) {
      w = avg.tensors[i].clone();
      continue;
    }
    const torch::Tensor delta = avg.tensors[i] - w;
    m_[i] = m_[i] * opt_.beta_1 + delta * (1 - opt_.beta_1);
    v_[i] = update_v(v_[i], delta);
    w = w + m_[i] * eta / (v_[i].sqrt() + opt_.tau);
  }
  out.parameters = clone(*current_);
  return out;
}

}  // namespace fedtrack

namespace fedtrack {
namespace {
// m_ and v_ as one Parameters each, named after the model's tensors.
std::string encode_moments(const Parameters& layout, const std::vector<torch::Tensor>& moments) {
  Parameters p;
  p.names = layout.names;
  p.buffer_begin = layout.buffer_begin;
  p.tensors = moments;
  return encode_parameters(p);
}
}  // namespace

StateRecord FedOpt::save_state() const {
  StateRecord state;
  if (!current_ || m_.empty()) return state;  // before the first aggregation: nothing but the model
  state["m"] = encode_moments(*current_, m_);
  state["v"] = encode_moments(*current_, v_);
  return state;
}

void FedOpt::restore_state(const Parameters& global, const StateRecord& state) {
  current_ = clone(global);
  m_.clear();
  v_.clear();
  if (state.empty()) return;
  Parameters m = decode_parameters(state_at(state, "m"));
  Parameters v = decode_parameters(state_at(state, "v"));
  check_layout(global, m, name() + " state (first moment)");
  check_layout(global, v, name() + " state (second moment)");
  m_ = std::move(m.tensors);
  v_ = std::move(v.tensors);
}

}  // namespace fedtrack
