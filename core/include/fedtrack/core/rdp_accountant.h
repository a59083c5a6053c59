// RdpAccountant — the privacy spent by repeated rounds of the Poisson-
// subsampled Gaussian mechanism, in Rényi differential privacy (Mironov 2017;
// Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
// Gaussian Mechanism"), converted to (epsilon, delta).
//
// One round: every client is included independently with probability q and
// the sum of their updates (each clipped to L2 norm C) gets Gaussian noise of
// standard deviation noise_multiplier * C. Its RDP at order alpha is
// log(A_alpha) / (alpha - 1), with A_alpha computed by a finite binomial sum
// for integer alpha and by the two-sided erfc series of Mironov et al. (Sec.
// 3.3) for fractional alpha. RDP composes by adding over rounds. The
// conversion to (epsilon, delta) is the improved bound of Balle et al. 2020
// (Prop. 12) / Asoodeh et al. 2020, minimised over the orders — the one
// Google's dp_accounting RdpAccountant uses, with its default orders.
//
// Torch-free, plain values; not synchronized.
#pragma once

#include <cstdint>
#include <vector>

namespace fedtrack {

// 1.1, 1.2, ..., 10.9, 11, 12, ..., 63, 128, 256, 512, 1024.
std::vector<double> default_rdp_orders();

// RDP of one round at each order; +infinity where it does not exist
// (noise_multiplier == 0) or a series did not converge.
// Error(kInvalidArgument) for q outside [0, 1] or noise_multiplier < 0.
std::vector<double> rdp_poisson_subsampled_gaussian(double q, double noise_multiplier,
                                                    const std::vector<double>& orders);

struct EpsilonBound {
  double epsilon = 0;
  double order = 0;  // the order that gave the smallest epsilon
};

// The smallest epsilon over the orders for this delta (> 0).
EpsilonBound epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta);

class RdpAccountant {
 public:
  // Error(kInvalidArgument) for q outside [0, 1] or noise_multiplier < 0.
  RdpAccountant(double q, double noise_multiplier, std::vector<double> orders = default_rdp_orders());

  // Accounts `rounds` more rounds.
  void compose(std::int64_t rounds = 1);
  std::int64_t rounds() const { return rounds_; }
  // Error(kInvalidArgument) unless 0 < delta < 1.
  double epsilon(double delta) const;

 private:
  std::vector<double> orders_;
  std::vector<double> per_round_;  // RDP of one round at each order
  std::int64_t rounds_ = 0;
};

}  // namespace fedtrack
