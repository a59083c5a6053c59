// SecAgg+ in `fedtrack server`: the same SecAggServer as the in-process step
// (privacy/secagg/secagg_round.h), its four stages run across the sites as
// kSecAggTask tasks (net/protocol.h). A fit result under SecAgg+ carries no
// model: the site keeps its trained model and feeds it, masked, to stage 3.
//
// Each stage posts every participant's request at once and waits at most
// secure_aggregation.timeout for the replies. A site that fails the task,
// does not answer in time, falls silent or sends a reply the server's state
// machine refuses counts as dropped for the round; the engine decides
// whether the round can still complete (enough survivors for every secret
// it must rebuild). Afterwards, as in the simulation, every summed result's
// parameters are the secure weighted mean; dropped clients become failures;
// a round that cannot complete turns every result into a failure and
// releases nothing. Metrics: secagg_seconds, secagg_server_seconds (the
// server's own work), secagg_bytes (every stage task and reply as sent on
// the wire, heads included), secagg_dropouts.
#pragma once

#include <functional>
#include <string>

#include "privacy/secagg/secagg_round.h"

namespace fedtrack::net {

class RemoteSite;

// The site a fit result's client_id names (null: unknown, the client drops).
using SiteLookup = std::function<RemoteSite*(const std::string& client_id)>;

SecureAggregationStep network_secure_aggregation(const SecureAggregationSpec& spec, std::uint64_t job_seed,
                                                 SiteLookup sites, std::function<void(const std::string&)> log);

}  // namespace fedtrack::net
