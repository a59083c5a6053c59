// Secure aggregation of one round's fit results inside one process (the
// simulation runtime): every result's client runs SecAggClient on its own
// update and the server runs SecAggServer on the bytes they exchange — the
// same protocol code as the network runtime, so its cost and its
// quantization error are measured honestly. The server side never reads a
// result's parameters.
//
// Afterwards every summed client's parameters are replaced by the secure
// weighted mean (as Flower's secaggplus workflow does before calling the
// strategy), so any averaging strategy aggregates exactly that mean; clients
// the protocol dropped become failures. When the round cannot complete
// (too few survivors) every result becomes a failure and nothing of any
// client is released. Metrics: secagg_seconds (the whole protocol, the
// clients' work included, which here runs one client after another),
// secagg_server_seconds (the server's part alone), secagg_bytes (all
// stages, both directions), secagg_dropouts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/strategy.h"

namespace fedtrack {

// What ServerOptions::secure_aggregation calls.
using SecureAggregationStep = std::function<void(int round, const Parameters& global, std::vector<FitResult>& results,
                                                 std::vector<ClientFailure>& failures, Metrics& metrics)>;

SecureAggregationStep in_process_secure_aggregation(const SecureAggregationSpec& spec, std::uint64_t job_seed);

// What both runtimes share, so they feed the protocol the same numbers.
namespace secagg {
struct QuantizationParams;
struct ShareCount;
// Error(kInvalidArgument) unless every tensor is float32.
void require_float32(const Parameters& p);
std::vector<float> flatten(const Parameters& p);
Parameters unflatten(const Parameters& layout, const std::vector<float>& values);
QuantizationParams quantization_of(const SecureAggregationSpec& spec);
ShareCount share_count(double value);  // Flower's int-or-fraction reading
// The seed of a client's stochastic rounding in a round: derived from its
// fit task's "seed" (task_seed(job_seed, round, client) >> 1).
std::uint64_t rounding_seed(std::int64_t fit_seed);
struct SecAggResult;
class SecAggServer;
// The round's results once the protocol has answered: each summed client's
// parameters become the secure mean (shared tensors, read-only from then
// on), every other client a failure naming why it dropped (the server's
// reason). `results` are the round's fit results in client order 1..n.
// Returns how many dropped.
std::size_t keep_summed(const Parameters& global, const SecAggResult& outcome, const SecAggServer& server,
                        std::vector<FitResult>& results, std::vector<ClientFailure>& failures);
}  // namespace secagg

}  // namespace fedtrack
