// Central DP with a fixed clipping norm, Flower's
// DifferentialPrivacyServerSideFixedClipping and
// DifferentialPrivacyClientSideFixedClipping. See dp_wrapper.h for what a
// round does and where fedtrack departs from Flower.
//
// Server side: the server clips each update (model - global) to
// clipping_norm. Client side: the norm goes to the clients in the fit config
// (dp_clipping_norm) and TorchClient clips before it returns its model, so the
// server only checks.
#pragma once

#include "fedtrack/core/dp_wrapper.h"

namespace fedtrack {

class DpServerSideFixedClipping : public DpWrapper {
 public:
  DpServerSideFixedClipping(std::unique_ptr<Strategy> inner, DpOptions options)
      : DpWrapper(std::move(inner), std::move(options), Side::kServer, /*adaptive=*/false) {}
};

class DpClientSideFixedClipping : public DpWrapper {
 public:
  DpClientSideFixedClipping(std::unique_ptr<Strategy> inner, DpOptions options)
      : DpWrapper(std::move(inner), std::move(options), Side::kClient, /*adaptive=*/false) {}
};

}  // namespace fedtrack
