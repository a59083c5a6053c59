#include "fedtrack/core/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) without overflow.
double log_add(double a, double b) {
  const double lo = std::min(a, b), hi = std::max(a, b);
  if (lo == -kInf) return hi;
  return hi + std::log1p(std::exp(lo - hi));
}

// log |binomial(n, k)| for real n, integer k >= 0 (lgamma is log|Gamma|, so a
// negative generalized coefficient contributes its magnitude).
double log_binomial(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

// log(erfc(x)), accurate where erfc(x) underflows.
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  // Asymptotic expansion of log(erfc(x)) at +infinity; its first omitted term
  // is O(x^-10), below 1e-13 here.
  const double x2 = x * x;
  return -0.5 * std::log(M_PI) - std::log(x) - x2 - 0.5 / x2 + 0.625 / (x2 * x2) -
         37.0 / 24.0 / (x2 * x2 * x2) + 353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

// log(A_alpha) for integer alpha >= 2 and 0 < q < 1:
//   A_alpha = sum_{i=0}^{alpha} C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)).
double log_a_integer(double q, double sigma, std::int64_t alpha) {
  double log_a = -kInf;
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  for (std::int64_t i = 0; i <= alpha; ++i) {
    const double di = static_cast<double>(i);
    const double term = log_binomial(static_cast<double>(alpha), di) + di * log_q +
                        static_cast<double>(alpha - i) * log_1mq + (di * di - di) / (2 * sigma * sigma);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

// log(A_alpha) for fractional alpha > 1 and 0 < q < 1: A_alpha split at
// z0 = sigma^2 log(1/q - 1) + 1/2 into two integrals, each expanded as a
// generalized binomial series whose terms carry an erfc factor. Terms are
// added by magnitude, which bounds A_alpha from above (the negative
// generalized coefficients past alpha only lower it) — the conservative
// choice, and the one dp_accounting makes. +infinity if 1000 terms do not
// settle.
double log_a_fractional(double q, double sigma, double alpha) {
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double s2 = std::sqrt(2.0) * sigma;
  double log_a0 = -kInf, log_a1 = -kInf;
  double last0 = -kInf, last1 = -kInf;
  for (int i = 0; i < 1000; ++i) {
    const double di = i;
    const double j = alpha - di;
    const double log_coef = log_binomial(alpha, di);
    const double log_t0 = log_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + di * log_1mq;
    const double log_e0 = std::log(0.5) + log_erfc((di - z0) / s2);
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / s2);
    const double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    log_a0 = log_add(log_a0, log_s0);
    log_a1 = log_add(log_a1, log_s1);
    const double total = log_add(log_a0, log_a1);
    // Done once both term sequences are falling and negligible (e^-30) next to the sum.
    if (log_s0 < last0 && log_s1 < last1 && std::max(log_s0, log_s1) < total - 30) return total;
    last0 = log_s0;
    last1 = log_s1;
  }
  return kInf;
}

void check(double q, double noise_multiplier) {
  if (!(q >= 0 && q <= 1)) throw Error::invalid_argument("rdp accountant: sampling rate q must be in [0, 1]");
  if (!(noise_multiplier >= 0)) throw Error::invalid_argument("rdp accountant: noise_multiplier must be >= 0");
}

}  // namespace

std::vector<double> default_rdp_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 11; a < 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0, 1024.0}) orders.push_back(a);
  return orders;
}

std::vector<double> rdp_poisson_subsampled_gaussian(double q, double noise_multiplier,
                                                    const std::vector<double>& orders) {
  check(q, noise_multiplier);
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double alpha : orders) {
    if (!(alpha > 1)) throw Error::invalid_argument("rdp accountant: orders must be > 1");
    if (q == 0) {
      rdp.push_back(0);
    } else if (std::isinf(alpha) || noise_multiplier == 0) {
      rdp.push_back(kInf);
    } else if (q == 1) {
      rdp.push_back(alpha / (2 * noise_multiplier * noise_multiplier));  // the plain Gaussian mechanism
    } else if (alpha == std::floor(alpha)) {
      rdp.push_back(log_a_integer(q, noise_multiplier, static_cast<std::int64_t>(alpha)) / (alpha - 1));
    } else {
      rdp.push_back(log_a_fractional(q, noise_multiplier, alpha) / (alpha - 1));
    }
  }
  return rdp;
}

EpsilonBound epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta) {
  if (!(delta > 0 && delta < 1)) throw Error::invalid_argument("rdp accountant: delta must be in (0, 1)");
  if (orders.size() != rdp.size() || orders.empty()) {
    throw Error::invalid_argument("rdp accountant: need one RDP value per order");
  }
  EpsilonBound best{kInf, orders.front()};
  for (std::size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k], r = rdp[k];
    double eps;
    if (r < 0) {
      eps = 0;  // only from rounding at vanishing privacy loss
    } else if (delta * delta + std::expm1(-r) > 0) {
      eps = 0;  // delta >= sqrt(1 - exp(-KL)) already: (0, delta)-DP
    } else if (a > 1.01) {
      // eps = r + log((a-1)/a) - (log(delta) + log(a)) / (a-1)
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    } else {
      eps = kInf;  // the bound is numerically unstable as a -> 1
    }
    if (eps < best.epsilon) best = {eps, a};  // first minimum wins, like argmin
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant(double q, double noise_multiplier, std::vector<double> orders)
    : orders_(std::move(orders)), per_round_(rdp_poisson_subsampled_gaussian(q, noise_multiplier, orders_)) {}

void RdpAccountant::compose(std::int64_t rounds) {
  if (rounds < 0) throw Error::invalid_argument("rdp accountant: rounds must be >= 0");
  rounds_ += rounds;
}

double RdpAccountant::epsilon(double delta) const {
  std::vector<double> total(per_round_.size());
  for (std::size_t k = 0; k < total.size(); ++k) {
    total[k] = rounds_ == 0 ? 0.0 : per_round_[k] * static_cast<double>(rounds_);
  }
  return epsilon_from_rdp(orders_, total, delta).epsilon;
}

}  // namespace fedtrack
