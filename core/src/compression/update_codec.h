// Private to core: the job's compression settings applied to Parameters —
// what both runtimes do with fedtrack/core/compression.h.
//
//   downlink  the server encodes the global model's values (not a delta)
//             with fp16 or int8; every client of a round gets the same
//             bytes (the int8 stream is seeded by job seed and round). The
//             server keeps the exact model; only what clients train from is
//             lossy.
//   uplink    the client encodes its update, trained − received (the model
//             it decoded), with raw float32, fp16, int8 or topk, through
//             its error-feedback residual when compression.error_feedback
//             is on; the server adds the decoded update to its exact global
//             model. With compression on in either direction the uplink
//             always carries an update (raw when uplink is none), so
//             downlink noise never enters the global model.
//
// Every tensor must be float32 (the codecs work on float buffers): a model
// with another dtype is refused when the job starts. Thread-safety: free
// functions; a Residual belongs to one client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fedtrack/core/compression.h"
#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/parameters.h"

namespace fedtrack::compression {

struct Plan {
  Codec uplink = Codec::kRaw;
  Codec downlink = Codec::kRaw;
  double topk_fraction = 0.01;
  bool error_feedback = true;
  std::uint64_t job_seed = 0;
  bool enabled = false;  // false: models travel as FTPM, as without compression
};
Plan plan_for(const CompressionSpec& spec, std::uint64_t job_seed);

// Error(kInvalidArgument) naming the first tensor that is not float32.
void check_compressible(const Parameters& model);

// Downlink: the model's values in the plan's downlink codec, and back into
// tensors shaped like `layout` (Error(kCorruption) for a malformed payload).
std::string encode_model(const Plan& plan, const Parameters& model, std::int64_t round);
Parameters decode_model(std::string_view bytes, const Parameters& layout);

// Uplink, client side: trained − received, encoded (through `residual`
// when the plan has error feedback; it may be null otherwise).
std::string encode_update(const Plan& plan, const Parameters& trained, const Parameters& received, std::int64_t round,
                          const std::string& client, Residual* residual);
// Uplink, server side: global + the decoded update, as new tensors.
// Error(kCorruption) for a malformed payload.
Parameters apply_update(std::string_view bytes, const Parameters& global);

}  // namespace fedtrack::compression
