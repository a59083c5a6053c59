// Prints fedtrack's epsilon for rounds of the Poisson-subsampled Gaussian
// mechanism, for comparing with Google's dp_accounting
// (tests/integration/test_dp_accounting.py).
//
//   dp_epsilon < cases.txt
// input:  one case per line: q sigma rounds delta
// output: one line per case: epsilon order   (%.17g; "inf" when unbounded)
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "fedtrack/core/error.h"
#include "fedtrack/core/rdp_accountant.h"

int main() {
  try {
    const std::vector<double> orders = fedtrack::default_rdp_orders();
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::istringstream in(line);
      double q = 0, sigma = 0, delta = 0;
      long long rounds = 0;
      if (!(in >> q >> sigma >> rounds >> delta)) {
        std::cerr << "dp_epsilon: cannot read 'q sigma rounds delta' from: " << line << "\n";
        return 2;
      }
      std::vector<double> rdp = fedtrack::rdp_poisson_subsampled_gaussian(q, sigma, orders);
      for (double& r : rdp) r *= static_cast<double>(rounds);
      const fedtrack::EpsilonBound bound = fedtrack::epsilon_from_rdp(orders, rdp, delta);
      // Also through the accountant the DP wrappers use, which must agree.
      fedtrack::RdpAccountant accountant(q, sigma, orders);
      accountant.compose(rounds);
      if (accountant.epsilon(delta) != bound.epsilon) {
        std::cerr << "dp_epsilon: RdpAccountant disagrees with epsilon_from_rdp for: " << line << "\n";
        return 1;
      }
      std::printf("%.17g %.17g\n", bound.epsilon, bound.order);
    }
  } catch (const fedtrack::Error& e) {
    std::cerr << "dp_epsilon: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
