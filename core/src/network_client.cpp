// `fedtrack client`: one site's process. It dials out only: joins, long-
// polls for tasks, trains or evaluates on its own data (net/site.h), and
// posts the result; a heartbeat thread keeps the server informed while it
// works (net/connection.h). Connection failures are retried with backoff
// (rejoining when the server no longer knows the session) until
// give_up_after seconds pass without reaching any server.
#include <Poco/Net/HTTPRequest.h>
#include <Poco/URI.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/network.h"
#include "net/connection.h"
#include "net/protocol.h"
#include "net/secagg_site.h"
#include "net/site.h"
#include "net/tls.h"
#include "thread_pool.h"

namespace fedtrack {
namespace {

// How long posting a result may wait on the server (see the post below).
constexpr double kResultSeconds = 900;

using Clock = std::chrono::steady_clock;
using Poco::Net::HTTPRequest;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// This process, as the server tells it from another one using the same token.
std::string instance_id() {
  std::random_device entropy;
  std::string instance;
  char buf[3];
  for (int i = 0; i < 16; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", entropy() & 0xff);
    instance += buf;
  }
  return instance;
}

// The result's message head as the server will take it (a fit result's
// model, result.payload, follows it on the wire): one over the server's
// max_message_mb would be refused (413) however often it is sent, so it
// becomes a task failure saying so.
std::string result_head(net::Result& result, std::int64_t server_max_mb,
                        const std::function<void(const std::string&)>& log) {
  std::string head = net::encode_result_head(result);
  const auto server_max = static_cast<std::uint64_t>(server_max_mb) << 20;
  const std::uint64_t size = head.size() + (result.kind == MessageKind::kFitResult ? result.payload.size() : 0);
  if (size <= server_max) return head;
  const std::string why = "the result of " + std::to_string(size >> 20) +
                          " MB is over the server's max_message_mb (" + std::to_string(server_max >> 20) + ")";
  log("round " + std::to_string(result.round) + ": " + why);
  result.kind = MessageKind::kTaskFailed;
  result.error = why;
  result.payload.clear();
  return net::encode_result_head(result);
}

}  // namespace

void run_network_client(const NetworkClientOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const Poco::URI uri(options.server);
  if (uri.getScheme() != "http" && uri.getScheme() != "https") {
    throw Error::invalid_argument("--server " + options.server + ": expected http://HOST:PORT or https://HOST:PORT");
  }
  if (options.token.empty()) throw Error::invalid_argument("--token is required");
  if (!options.tls_ca.empty()) check_regular_file(options.tls_ca);  // OpenSSL would block on a FIFO
  Poco::Net::Context::Ptr context;
  if (uri.getScheme() == "https") {
    context = net::client_tls_context(options.tls_ca);
  } else if (!options.tls_ca.empty()) {
    throw Error::invalid_argument("--tls-ca needs an https:// server");
  }
  torch::set_num_threads(options.threads > 0 ? options.threads : static_cast<int>(ThreadPool::cores()));
  const std::uint64_t max_bytes = static_cast<std::uint64_t>(options.max_message_mb) << 20;
  const std::string instance = instance_id();
  net::Connection connection(uri, context, options.token, instance, max_bytes);

  net::Site site;
  net::Joined joined;
  net::SecAggRound secure_round;  // SecAgg+: this round's protocol state (net/secagg_site.h)
  auto last_contact = Clock::now();
  double backoff = 0.25;
  std::string last_problem;
  auto stopped = [&] { return options.stop_requested && options.stop_requested(); };
  // A failed exchange: say so once, wait, give up when it has lasted too long.
  auto trouble = [&](const std::string& problem) {
    if (problem != last_problem) log(problem + "; retrying");
    last_problem = problem;
    if (seconds_since(last_contact) > options.give_up_after) {
      throw Error::unavailable("no server at " + options.server + " for " +
                               std::to_string(static_cast<int>(options.give_up_after)) + " s (" + problem +
                               "); giving up");
    }
    const auto until = Clock::now() + std::chrono::duration<double>(backoff);
    while (Clock::now() < until && !stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff = std::min(backoff * 2, 5.0);
  };
  auto contact = [&] {
    last_contact = Clock::now();
    backoff = 0.25;
    last_problem.clear();
  };
  auto refused = [&](const net::Reply& r) {
    if (r.status == 401) {
      throw Error(ErrorCode::kUnauthenticated,
                  "the server at " + options.server + " refused the token: " + net::reply_text(r.body));
    }
  };

  while (true) {
    if (stopped()) throw Error::cancelled("stopped by request");
    if (joined.session.empty()) {
      net::Reply r;
      try {
        r = connection.send(HTTPRequest::HTTP_POST, net::kJoinPath, "", "", 30);
      } catch (const Poco::Exception& e) {
        trouble("cannot reach " + options.server + ": " + e.displayText());
        continue;
      }
      last_contact = Clock::now();
      refused(r);
      if (r.status != 200) {  // e.g. 409: another process holds this token's session; back off, do not spin
        trouble("join answered " + std::to_string(r.status) + ": " + net::reply_text(r.body));
        continue;
      }
      contact();
      joined = net::decode_joined(r.body);
      if (site.signature != net::data_signature(joined)) site = net::make_site(joined, options.data, log);
      net::adopt_compression(site, joined);
      log("joined " + options.server + " as " + joined.client + " for job " + joined.job_id);
      continue;
    }

    net::Reply r;
    net::ReceivedTask received;  // the model goes straight into the site's inbox as it arrives
    try {
      r = connection.send_streamed(HTTPRequest::HTTP_GET, net::kTaskPath, joined.session, "", joined.poll_seconds + 30,
                                   [&](std::uint64_t size, const ByteSource& source) {
                                     received = net::read_task(size, source, site.inbox ? &site : nullptr);
                                   });
    } catch (const Poco::Exception& e) {
      trouble("lost " + options.server + ": " + e.displayText());
      continue;
    }
    contact();
    refused(r);
    if (r.status == 409) {
      log("server says: " + net::reply_text(r.body));
      joined.session.clear();
      continue;
    }
    if (r.status != 200) {
      trouble("task request answered " + std::to_string(r.status) + ": " + net::reply_text(r.body));
      continue;
    }
    const net::TaskMessage& task = received.message;
    if (task.head.kind == MessageKind::kWait) continue;
    if (task.head.kind == MessageKind::kDone) {
      log("job " + joined.job_id + " is done");
      return;
    }
    if (task.head.job_id != joined.job_id) {
      joined.session.clear();  // another job: join again for its model and data format
      continue;
    }

    // --- run the task ---
    // Heartbeats from the task's arrival until its result is delivered: a
    // long decode, training or upload is not silence.
    net::Heartbeat heartbeat(net::Connection(uri, context, options.token, instance, 1 << 20), joined.session,
                             joined.heartbeat_seconds);
    net::Result result = task.head.kind == MessageKind::kSecAggTask ? secure_round.stage(received.message, log)
                         : joined.secure_aggregation && task.head.kind == MessageKind::kFitTask
                             ? secure_round.fit(site, received, log)
                             : net::perform(site, received, log);
    const std::string head = result_head(result, joined.max_message_mb, log);
    const std::string_view payload =
        result.kind == MessageKind::kFitResult ? std::string_view(result.payload) : std::string_view();
    const std::string round = std::to_string(task.head.round);
    const char* kind = message_kind_name(result.kind);
    while (true) {  // deliver the result (the server may be briefly away)
      if (stopped()) throw Error::cancelled("stopped by request");
      net::Reply posted;
      try {
        // The server reads fit results in the order it folds them (client id),
        // so this one may wait for an earlier, slower site: a socket call may
        // make no progress for up to kResultSeconds before it counts as lost.
        posted = connection.send(HTTPRequest::HTTP_POST, net::kResultPath, joined.session, head, kResultSeconds, payload);
      } catch (const Poco::Exception& e) {
        trouble("cannot send the round " + round + " result: " + e.displayText());
        continue;
      }
      contact();
      refused(posted);
      if (posted.status == 204) {
        log("round " + round + ": " + kind + " sent");
        net::secagg_test_kill_after(task, log);
      } else {
        log("round " + round + ": the server refused the " + kind + " (" + std::to_string(posted.status) +
            "): " + net::reply_text(posted.body));
        if (posted.status == 409) joined.session.clear();
      }
      break;
    }
  }
}

}  // namespace fedtrack
