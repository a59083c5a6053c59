#include "fedtrack/core/fedprox.h"

#include "fedtrack/core/error.h"

namespace fedtrack {

FedProx::FedProx(FedAvgOptions options, double proximal_mu) : FedAvg(std::move(options)), proximal_mu_(proximal_mu) {
  if (proximal_mu < 0) throw Error::invalid_argument("fedprox: proximal_mu must be >= 0");
}

std::vector<FitInstruction> FedProx::configure_fit(int round, std::shared_ptr<const Parameters> global,
                                                   ClientManager& clients) {
  auto plan = FedAvg::configure_fit(round, std::move(global), clients);
  for (auto& ins : plan) ins.ins.config["proximal_mu"] = proximal_mu_;
  return plan;
}

}  // namespace fedtrack
