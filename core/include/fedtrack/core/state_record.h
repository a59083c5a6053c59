// StateRecord — the resumable state of one component (a strategy's server
// moments, a DP wrapper's clipping norm and noise RNG, the client sampler's
// RNG) as named byte strings, so `--resume` can put it back exactly.
//
// encode_state/decode_state: magic "FTST", u16 version 1, u32 count, then
// (u32 length + key, u32 length + value) in key order; decoding checks every
// length (Error(kCorruption)). Wrappers nest their inner strategy's record
// under a key prefix with nest()/unnest(). Torch-free; tensors go in as
// encode_parameters() bytes.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>

namespace fedtrack {

using StateRecord = std::map<std::string, std::string>;

std::string encode_state(const StateRecord& state);
StateRecord decode_state(std::string_view bytes);

// The entries of `inner` with `prefix` put before each key, added to `out`.
void nest(StateRecord& out, const std::string& prefix, const StateRecord& inner);
// The entries of `state` under `prefix`, with the prefix taken off.
StateRecord unnest(const StateRecord& state, const std::string& prefix);

// Exact round trips of scalars and RNGs.
std::string encode_f64(double value);
double decode_f64(std::string_view bytes);
std::string encode_rng(const std::mt19937_64& rng);
std::mt19937_64 decode_rng(std::string_view text);

// Error(kCorruption) naming `key` when it is missing.
const std::string& state_at(const StateRecord& state, const std::string& key);

}  // namespace fedtrack
