#include "fedtrack/core/fedavgm.h"

#include "fedtrack/core/error.h"

namespace fedtrack {

FedAvgM::FedAvgM(FedAvgOptions options, double server_learning_rate, double server_momentum)
    : FedAvg(std::move(options)), lr_(server_learning_rate), momentum_(server_momentum) {
  if (!(lr_ > 0)) throw Error::invalid_argument("fedavgm: server_learning_rate must be > 0");
  if (momentum_ < 0) throw Error::invalid_argument("fedavgm: server_momentum must be >= 0");
}

std::optional<Parameters> FedAvgM::initialize_parameters(ClientManager& clients) {
  auto initial = FedAvg::initialize_parameters(clients);
  if (initial) current_ = clone(*initial);
  return initial;
}

AggregateFitOutcome FedAvgM::server_step(int round, AggregateFitOutcome out) {
  const bool server_opt = lr_ != 1.0 || momentum_ != 0.0;
  if (!out.parameters || !server_opt) return out;
  if (!current_) throw Error::failed_precondition("fedavgm: server-side optimization needs initial parameters");
  torch::NoGradGuard no_grad;
  Parameters pseudo;
  pseudo.names = current_->names;
  pseudo.buffer_begin = current_->buffer_begin;
  for (std::size_t i = 0; i < current_->size(); ++i) pseudo.tensors.push_back(current_->tensors[i] - out.parameters->tensors[i]);
  if (momentum_ > 0) {
    if (round > 1 && velocity_) {
      for (std::size_t i = 0; i < pseudo.size(); ++i) {
        velocity_->tensors[i] = velocity_->tensors[i] * momentum_ + pseudo.tensors[i];
      }
    } else {
      velocity_ = clone(pseudo);
    }
    pseudo = clone(*velocity_);
  }
  for (std::size_t i = 0; i < current_->size(); ++i) {
    const auto& t = current_->tensors[i];
    current_->tensors[i] = t.is_floating_point() ? t - pseudo.tensors[i] * lr_ : out.parameters->tensors[i];
  }
  out.parameters = clone(*current_);
  return out;
}

}  // namespace fedtrack

namespace fedtrack {

StateRecord FedAvgM::save_state() const {
  StateRecord state;
  if (velocity_) state["velocity"] = encode_parameters(*velocity_);
  return state;
}

void FedAvgM::restore_state(const Parameters& global, const StateRecord& state) {
  current_ = clone(global);
  velocity_.reset();
  auto it = state.find("velocity");
  if (it == state.end()) return;
  Parameters velocity = decode_parameters(it->second);
  check_layout(global, velocity, "fedavgm state (velocity)");
  velocity_ = std::move(velocity);
}

}  // namespace fedtrack
