// The update arithmetic of central differential privacy, shared by the DP
// strategy wrappers (server side) and TorchClient (client side): the L2 norm
// of a model update, clipping it, and Gaussian noise on an aggregate.
//
// An update is model - global over the floating tensors (parameters and
// floating buffers) taken together as one vector (Flower's "flat clip",
// McMahan et al. 2018). Integer buffers (e.g. BatchNorm's
// num_batches_tracked) cannot be clipped or noised, so a clipped model
// carries the global model's integer buffers: nothing data-dependent passes
// through them. Plain functions; thread-compatible.
#pragma once

#include <random>

#include "fedtrack/core/parameters.h"

namespace fedtrack {

// Fit-config key through which client-side modes send the clipping norm, and
// the fit metric through which a client reports that it had to clip (1) or
// not (0), as Flower's norm_bit.
inline constexpr const char* kDpClippingNormKey = "dp_clipping_norm";
inline constexpr const char* kDpNormBitKey = "dp_norm_bit";

// || model - global ||_2 over the floating tensors, accumulated in double.
// Error(kInvalidArgument) if the layouts differ.
double update_norm(const Parameters& model, const Parameters& global);

struct ClippedModel {
  Parameters model;      // global + update * min(1, clipping_norm / norm)
  double norm = 0;       // the update's norm before clipping
  bool clipped = false;  // norm > clipping_norm
};

// The model whose update is clipped to `clipping_norm` (> 0). An update
// within the norm keeps the client's floating tensors bit for bit.
ClippedModel clip_model_update(const Parameters& model, const Parameters& global, double clipping_norm);

// Adds N(0, stddev^2) to every element of every floating tensor. The noisy
// tensors replace the old ones in `params` (never written in place, so
// tensors shared with client results stay untouched).
// Draws in tensor order, element order, from `rng` — deterministic for a
// given rng state.
void add_gaussian_noise(Parameters& params, double stddev, std::mt19937_64& rng);

}  // namespace fedtrack
