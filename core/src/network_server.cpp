// `fedtrack server`: the job's lifecycle around the network wing (net/).
// Poco's HTTP connection handling (a TCPServerDispatcher fed by our own
// connection gate, net/network_gate.h, which lets only complete,
// authenticated request heads reach its worker threads) runs the endpoints
// (net/http_endpoints.h) on the site registry (net/site_registry.h); the
// shared round loop samples RemoteSites (net/remote_site.h), whose fit()
// and evaluate() go through that registry.
#include <Poco/Net/HTTPServerConnectionFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServerDispatcher.h>
#include <Poco/ThreadPool.h>
#include <torch/utils.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/network.h"
#include "job_runtime.h"
#include "net/http_endpoints.h"
#include "net/network_gate.h"
#include "net/remote_site.h"
#include "net/secagg_stage.h"
#include "net/site_registry.h"
#include "net/tls.h"
#include "net/tokens.h"
#include "malloc_policy.h"
#include "thread_pool.h"

namespace fedtrack {
namespace {

constexpr double kPollSeconds = 5;
// Connections the kernel completes before the gate accepts them: room for a
// burst while the gate thread waits for a core (the kernel caps it at somaxconn).
constexpr int kListenBacklog = 1024;

net::Joined job_header_for(const JobSpec& job, const std::string& job_id, const DatasetSplits& data) {
  net::Joined h;
  h.job_id = job_id;
  h.job_name = job.name;
  h.model = job.model;
  h.format = data.format;
  h.feature_shape = data.feature_shape;
  h.num_classes = data.num_classes;
  h.val_fraction = job.data.val_fraction;
  h.scaling_mean = data.scaling.mean;
  h.scaling_stddev = data.scaling.stddev;
  h.classes = data.class_names;
  h.label = data.label_column;
  h.heartbeat_seconds = std::max(0.2, job.server.client_timeout / 5);
  h.max_message_mb = job.server.max_message_mb;
  h.poll_seconds = kPollSeconds;
  if (job.compression.enabled()) {
    h.compression_uplink = job.compression.uplink;
    h.compression_downlink = job.compression.downlink;
    h.topk_fraction = job.compression.topk_fraction;
    h.error_feedback = job.compression.error_feedback;
    h.compression_seed = static_cast<std::int64_t>(task_seed(job.seed, 0, "compression") >> 1);
  }
  h.secure_aggregation = job.secure_aggregation.enabled();
  return h;
}

// The sites' data fingerprints, as their fit results report them.
struct FingerprintListener : RoundListener {
  std::map<std::string, std::string> by_name;
  void on_round(const RoundSummary& summary) override {
    for (const auto& c : summary.clients) {
      if (c.ok && !c.data_fingerprint.empty()) by_name[c.client_id] = c.data_fingerprint;
    }
  }
};

}  // namespace

JobResult run_network_server(const JobSpec& job, const NetworkServerOptions& options) {
  // One line at a time from the HTTP threads, the gate and the round loop.
  auto log_mutex = std::make_shared<std::mutex>();
  auto log = [log_mutex, sink = options.run.log](const std::string& line) {
    std::lock_guard<std::mutex> lock(*log_mutex);
    if (sink) sink(line);
  };
  if (options.tokens_file.empty()) throw Error::invalid_argument("--tokens FILE is required (lines 'name token')");
  const auto token_list = read_tokens_file(options.tokens_file);
  if (static_cast<std::int64_t>(token_list.size()) < job.clients.count) {
    throw Error::invalid_argument("--tokens " + options.tokens_file + " names " + std::to_string(token_list.size()) +
                                  " clients, fewer than clients.count = " + std::to_string(job.clients.count) +
                                  " (the server waits for that many before the first round)");
  }
  const net::TokenTable tokens(token_list);
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  Poco::Net::Context::Ptr context;
  if (tls) context = net::server_tls_context(options.tls_cert, options.tls_key);
  torch::set_num_threads(static_cast<int>(ThreadPool::cores()));
  return_large_blocks_to_the_system();  // before the test split and the HTTP threads

  // The server holds only the test split and the training split's scaling.
  DatasetSplits data = at_key(job, "data.dataset", [&] { return load_test_split(job.data, job.seed); });
  log(data.description + ": " + std::to_string(data.test.size()) + " test examples on the server; " +
      std::to_string(tokens.size()) + " client tokens");
  StateKeeper state(options.run.state_path, options.run.resume, job, options.run.job_digest);
  const std::string job_id = state.adopt_job_id(options.run.job_id);
  ServerSide side = make_server_side(job, data, log);

  // Sites, as the round loop samples them: available from their join until silent.
  ClientManager clients(job.seed);
  const net::RemoteJob remote_job{job_id, options.run.stop_requested};
  std::shared_ptr<const compression::Plan> compressing;
  if (job.compression.enabled()) {
    compressing = std::make_shared<const compression::Plan>(compression::plan_for(job.compression, job.seed));
    at_key(job, "compression.uplink", [&] { compression::check_compressible(parameters_from_module(*side.model.ptr())); });
  }
  net::ModelPayloads payloads(compressing);
  std::map<std::string, std::shared_ptr<net::RemoteSite>> sites;
  net::RegistryLimits limits;
  limits.client_timeout = job.server.client_timeout;
  limits.round_timeout = job.server.round_timeout;
  limits.poll_seconds = kPollSeconds;
  net::SiteRegistry registry(limits, net::steady_clock(), log, [&](const std::string& name, bool available) {
    if (available) clients.add(sites.at(name)); else clients.remove(name);
  });
  for (const auto& [name, token] : token_list) {
    sites[name] = std::make_shared<net::RemoteSite>(name, registry, payloads, remote_job);
  }
  const net::Endpoints endpoints{registry, tokens, job_header_for(job, job_id, data), job.server.max_message_mb,
                                 job.seed, log};

  // --- listen ---
  Poco::Net::SocketAddress address;
  try {
    address = Poco::Net::SocketAddress(options.listen);
  } catch (const Poco::Exception& e) {
    throw Error::invalid_argument("--listen " + options.listen + ": " + e.displayText());
  }
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  try {
    if (tls) {
      socket = std::make_unique<Poco::Net::SecureServerSocket>(address, kListenBacklog, context);
    } else {
      socket = std::make_unique<Poco::Net::ServerSocket>(address, kListenBacklog);
    }
  } catch (const Poco::Exception& e) {
    throw Error::unavailable("cannot listen on " + options.listen + ": " + e.displayText());
  }
  const int port = socket->address().port();
  const auto open_files = raise_open_file_limit();
  // Poco's HTTP side runs only authenticated connections: the gate (our
  // accept loop, net/network_gate.h) holds every new connection until its
  // request head is complete and carries a known token, then hands it to
  // the dispatcher.
  const int max_threads = std::max<int>(32, static_cast<int>(4 * tokens.size() + 8));
  Poco::ThreadPool http_threads(2, max_threads, 30);
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(max_threads);
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(15, 0));
  // A socket read or write that makes no progress for server.client_timeout
  // (at most 60 s) fails: an open request from a site that stopped
  // mid-transfer would otherwise count as presence, and hide its silence,
  // for as long as the socket waits.
  params->setTimeout(Poco::Timespan(
      static_cast<Poco::Timespan::TimeDiff>(std::clamp(job.server.client_timeout, 1.0, 60.0) * 1e6)));
  auto* handlers = new net::EndpointFactory(endpoints);
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_ptr(handlers);
  auto* dispatcher = new Poco::Net::TCPServerDispatcher(
      new Poco::Net::HTTPServerConnectionFactory(params, handlers_ptr), http_threads, params);
  struct ReleaseDispatcher {
    Poco::Net::TCPServerDispatcher* d;
    ~ReleaseDispatcher() { d->release(); }
  } release_dispatcher{dispatcher};
  ConnectionGate gate(
      *socket, tls, GateLimits{}, *dispatcher,
      [&tokens](const std::string& token) { return tokens.owner(token) != nullptr; }, log);
  // Stops the HTTP side exactly once, on every way out of this function, so
  // no handler thread outlives the registry.
  bool stopped = false;
  auto stop_serving = [&](bool finished) {
    if (stopped) return;
    stopped = true;
    if (finished) registry.finish(job.server.linger); else registry.stop();
    gate.stop();
    dispatcher->stop();
    handlers->abort_connections();
    http_threads.joinAll();
  };
  struct StopOnExit {
    std::function<void()> stop;
    ~StopOnExit() {
      try {
        stop();
      } catch (...) {
      }
    }
  } stop_on_exit{[&] { stop_serving(false); }};
  gate.start();
  const std::string scheme = tls ? "https" : "http";
  log("serving job " + job_id + " on " + scheme + "://" + address.host().toString() + ":" + std::to_string(port));
  log("connections: a request head within " + std::to_string(static_cast<int>(GateLimits{}.head_seconds)) +
      " s, at most " + std::to_string(GateLimits{}.max_pending) + " waiting (" +
      std::to_string(GateLimits{}.max_pending_per_address) + " per address); " + std::to_string(open_files) +
      " open files allowed");
  if (!tls) log("warning: plain http: updates and tokens travel unencrypted (use --tls-cert/--tls-key beyond loopback)");
  if (options.on_listening) options.on_listening(port);

  JobResult result;
  result.job_id = job_id;
  const auto& resume = state.resume_point();
  const int first_round = resume ? resume->completed_round + 1 : 1;
  ServerOptions server_options = server_options_for(job, job_id);
  server_options.model_card = side.card;
  server_options.test_set = side.test_set;
  server_options.parallelism = static_cast<std::size_t>(tokens.size());
  server_options.stop_requested = options.run.stop_requested;
  server_options.task_seed = job.seed;
  server_options.round_timeout = job.server.round_timeout;
  if (job.secure_aggregation.enabled()) {  // the stages run across the sites (net/secagg_stage.h)
    server_options.secure_aggregation = net::network_secure_aggregation(
        job.secure_aggregation, job.seed,
        [&sites](const std::string& id) -> net::RemoteSite* {
          auto it = sites.find(id);
          return it == sites.end() ? nullptr : it->second.get();
        },
        log);
  }
  // The first round this process runs waits for clients.count clients;
  // later rounds sample among those connected (after a short wait for
  // clients.min_available; sampling says what is missing).
  server_options.before_round = [&](int round) {
    const bool first = round == first_round;
    registry.wait_for_sites(static_cast<std::size_t>(first ? job.clients.count : job.clients.min_available),
                            first ? std::nullopt : std::optional<double>(job.server.client_timeout),
                            options.run.stop_requested, first ? 10.0 : 0.0);
  };
  FingerprintListener fingerprints;
  std::vector<RoundListener*> listeners = options.run.listeners;
  listeners.push_back(&fingerprints);
  // On a throw, stop_on_exit stops serving.
  run_rounds(clients, *side.strategy, server_options, state, listeners, options.run.state_path, log, result);
  result.site_fingerprints.assign(fingerprints.by_name.begin(), fingerprints.by_name.end());
  log("job " + job_id + " finished; telling the clients");
  stop_serving(true);
  return result;
}

}  // namespace fedtrack
