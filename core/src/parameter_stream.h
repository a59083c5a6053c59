// Decoding an FTPM model (parameters.h) as its bytes arrive, checked against
// the global model while it streams: the server reads a client's update
// straight from the socket into the tensors it will fold, with no copy of
// the body, and stops at the first tensor that breaks the layout or holds a
// NaN / Inf, before reading (or allocating) the rest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "byte_codec.h"
#include "fedtrack/core/parameters.h"

namespace fedtrack {

struct StreamedUpdate {
  Parameters parameters;  // complete when `rejection` is empty
  std::string rejection;  // the update is well formed so far but not acceptable (layout, NaN/Inf)
  std::uint64_t bytes_read = 0;
};

// Reads an encoding of exactly `size` bytes. Error(kCorruption) for a
// malformed or truncated encoding (the rest of the input is then unusable),
// Error(kInvalidArgument) for an unknown version. A wrong tensor count,
// name, dtype or shape, or a non-finite value, ends the read with
// `rejection` naming `who` and the tensor. Tensors are allocated as their
// headers are accepted, so a lying header costs no memory.
// With `into` (whose layout is `layout`'s: pass the same object), the
// tensors are read into its existing storage instead of fresh ones (a
// client's receive buffer, reused every round: no allocation, no page
// faults); on a rejection or error `into` holds partial bytes.
StreamedUpdate read_update(const ByteSource& source, std::uint64_t size, const Parameters& layout,
                           const std::string& who, Parameters* into = nullptr);

}  // namespace fedtrack
