// Central DP with an adaptive clipping norm (Andrew et al. 2021,
// "Differentially Private Learning with Adaptive Clipping"), Flower's
// DifferentialPrivacyServerSideAdaptiveClipping and
// DifferentialPrivacyClientSideAdaptiveClipping. See dp_wrapper.h for what a
// round does and where fedtrack departs from Flower.
//
// After each round the norm becomes
//   C * exp(clip_norm_lr * (noisy clipped fraction - target_clipped_quantile)),
// the clipped count noised with N(0, clipped_count_stddev^2). Part of the
// privacy budget pays for that count, so the model gets the noise multiplier
// (sigma^-2 - (2 clipped_count_stddev)^-2)^-1/2 and the pair together is
// accounted as sigma. Server side: the server clips and counts. Client side:
// clients clip to the dp_clipping_norm of their fit config and report
// dp_norm_bit (1 = clipped).
#pragma once

#include "fedtrack/core/dp_wrapper.h"

namespace fedtrack {

class DpServerSideAdaptiveClipping : public DpWrapper {
 public:
  DpServerSideAdaptiveClipping(std::unique_ptr<Strategy> inner, DpOptions options)
      : DpWrapper(std::move(inner), std::move(options), Side::kServer, /*adaptive=*/true) {}
};

class DpClientSideAdaptiveClipping : public DpWrapper {
 public:
  DpClientSideAdaptiveClipping(std::unique_ptr<Strategy> inner, DpOptions options)
      : DpWrapper(std::move(inner), std::move(options), Side::kClient, /*adaptive=*/true) {}
};

}  // namespace fedtrack
