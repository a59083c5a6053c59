// The network runtime: `fedtrack server` and `fedtrack client` as separate
// processes, one per site, over HTTP/1.1 (Poco::Net; TLS with Poco NetSSL).
// The round loop, strategies and listeners are the simulation's; only the
// ClientProxy differs (it hands tasks to a remote client and waits).
//
// Clients make every connection (sites behind firewalls only dial out):
//   POST /v1/join       Bearer token -> kJoined (name, session, job, model, data format)
//   GET  /v1/task       long poll -> kFitTask / kEvaluateTask (+ model) / kSecAggTask (+ stage request,
//                       SecAgg+ only) / kWait / kDone
//   POST /v1/result     kFitResult / kEvaluateResult / kSecAggResult / kTaskFailed for the task
//   POST /v1/heartbeat  while training, so a silent client counts as gone
// The protocol is defined once, in core/src/net/protocol.h (the runtime's
// parts: core/src/net/). Every body is a wire.h message, bounded by
// server.max_message_mb and checked before use; refused input gets a 4xx
// with the reason as text and one log line naming the client, and changes
// nothing. A connection must deliver a complete request head with a known
// token within a few seconds before any server thread works for it (see
// README, "Connections"); a second process using a live session's token
// gets 409.
//
// Torch-free header.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/round_listener.h"
#include "fedtrack/core/job_run.h"

namespace fedtrack {

struct NetworkServerOptions {
  JobRunOptions run;                    // job id, listeners, stop, log, resume point: as run_simulation's
  std::string listen = "0.0.0.0:8080";  // host:port; port 0 = any free one
  std::string tokens_file;              // lines "name token"
  std::string tls_cert;                 // PEM; with tls_key: https
  std::string tls_key;
  std::function<void(int port)> on_listening;  // the bound port, once serving
};

// Serves the job until its last round; tells connected clients it is over.
// Errors as run_simulation, plus kInvalidArgument for a bad tokens file or
// TLS files and kUnavailable for a round with fewer than clients.min_fit
// results. The result's site_fingerprints name each site's data.
JobResult run_network_server(const JobSpec& job, const NetworkServerOptions& options);

struct NetworkClientOptions {
  std::string server;          // http://host:port or https://host:port
  std::string token;
  std::string data;            // this site's data folder (a shard)
  std::string tls_ca;          // PEM CA bundle for https; "" = the system's
  double give_up_after = 600;  // seconds without reaching any server
  int threads = 0;             // LibTorch threads; 0 = all cores
  std::int64_t max_message_mb = 2048;
  std::function<bool()> stop_requested;
  std::function<void(const std::string&)> log;
};

// Joins, then fits and evaluates until the server says the job is done.
// Error(kUnauthenticated) at once for a refused token; kUnavailable after
// give_up_after seconds without a server; kCancelled on stop.
void run_network_client(const NetworkClientOptions& options);

// `fedtrack partition`: writes the job's partition of its training split as
// one folder per client, out_dir/0 .. out_dir/<count-1>, each in the
// dataset's own format (write_shard), for demos and tests of real sites.
// Returns the number of examples in each.
std::vector<std::int64_t> write_job_shards(const JobSpec& job, const std::string& out_dir,
                                           const std::function<void(const std::string&)>& log);

// Parses a tokens file: one "name token" per line, '#' comments and blank
// lines ignored. Error(kInvalidArgument) naming the line for anything else,
// a repeated name or token.
std::vector<std::pair<std::string, std::string>> read_tokens_file(const std::string& path);

}  // namespace fedtrack
