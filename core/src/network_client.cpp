// The network client: one site's process. It dials out only: joins, long-
// polls for tasks, trains or evaluates on its own data with TorchClient, and
// posts the result; a heartbeat thread keeps the server informed while it
// trains. Connection failures are retried with backoff (rejoining when the
// server no longer knows the session) until give_up_after seconds pass
// without reaching any server.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>
#include <torch/utils.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "fedtrack/core/client_app.h"
#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/network.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/text.h"
#include "thread_pool.h"
#include "fedtrack/core/torch_client.h"
#include "wire.h"

namespace fedtrack {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Reply {
  int status = 0;
  std::string body;
};

// One keep-alive HTTP(S) connection to the server; reconnects after a failure.
class Connection {
 public:
  Connection(Poco::URI uri, Poco::Net::Context::Ptr context, std::string token, std::string instance,
             std::uint64_t max_bytes)
      : uri_(std::move(uri)), context_(std::move(context)), token_(std::move(token)), instance_(std::move(instance)),
        max_bytes_(max_bytes) {}

  // Throws Poco::Exception when the server cannot be reached or the
  // connection breaks; any HTTP status is a Reply.
  Reply send(const std::string& method, const std::string& path, const std::string& session,
             const std::string& body, double timeout_seconds) {
    try {
      return send_once(method, path, session, body, timeout_seconds);
    } catch (...) {
      session_.reset();  // start over with a fresh connection next time
      throw;
    }
  }

 private:
  Reply send_once(const std::string& method, const std::string& path, const std::string& session,
                  const std::string& body, double timeout_seconds) {
    if (!session_) {
      if (context_) {
        session_ = std::make_unique<Poco::Net::HTTPSClientSession>(uri_.getHost(), uri_.getPort(), context_);
      } else {
        session_ = std::make_unique<Poco::Net::HTTPClientSession>(uri_.getHost(), uri_.getPort());
      }
      session_->setKeepAlive(true);
    }
    session_->setTimeout(Poco::Timespan(static_cast<long>(timeout_seconds), 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    req.set("Authorization", "Bearer " + token_);
    if (!session.empty()) req.set("X-Fedtrack-Session", session);
    req.set("X-Fedtrack-Instance", instance_);  // this process: the server refuses a second one with the same token
    req.setKeepAlive(true);
    if (method == Poco::Net::HTTPRequest::HTTP_POST) {
      req.setContentType("application/x-fedtrack-message");
      req.setContentLength64(static_cast<Poco::UInt64>(body.size()));
    }
    std::ostream& out = session_->sendRequest(req);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    Poco::Net::HTTPResponse resp;
    std::istream& in = session_->receiveResponse(resp);
    Reply reply;
    reply.status = resp.getStatus();
    const auto declared = resp.getContentLength64();
    if (declared >= 0 && static_cast<std::uint64_t>(declared) > max_bytes_) {
      throw Error::invalid_argument("the server sent a message of " + std::to_string(declared) +
                                    " bytes, over --max-message-mb");
    }
    if (declared > 0) reply.body.reserve(static_cast<std::size_t>(declared));
    char buf[1 << 16];
    while (in) {
      in.read(buf, sizeof buf);
      reply.body.append(buf, static_cast<std::size_t>(in.gcount()));
      if (reply.body.size() > max_bytes_) throw Error::invalid_argument("the server sent a message over --max-message-mb");
    }
    if (declared >= 0 && reply.body.size() != static_cast<std::uint64_t>(declared)) {
      throw Poco::Exception("the connection broke after " + std::to_string(reply.body.size()) + " of " +
                            std::to_string(declared) + " bytes");
    }
    if (!resp.getKeepAlive()) session_.reset();
    return reply;
  }

  Poco::URI uri_;
  Poco::Net::Context::Ptr context_;
  std::string token_;
  std::string instance_;
  std::uint64_t max_bytes_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
};

std::string trimmed(const std::string& body) {
  std::string s = body.substr(0, 500);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<double> split_doubles(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stod(item));
  return out;
}

std::vector<std::int64_t> split_ints(const std::string& text) {
  std::vector<std::int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

// This site's data and model for the job the server runs.
struct Site {
  std::string signature;
  std::shared_ptr<TorchClient> app;
};

std::string site_signature(const ConfigRecord& joined) {
  std::ostringstream sig;
  sig << config_string(joined, "model", "") << '|' << config_string(joined, "feature_shape", "") << '|'
      << config_int(joined, "num_classes", 0) << '|' << config_string(joined, "classes", "") << '|'
      << config_string(joined, "scaling_mean", "") << '|' << config_string(joined, "scaling_stddev", "") << '|'
      << config_double(joined, "val_fraction", 0.1) << '|' << static_cast<std::uint64_t>(config_int(joined, "data_seed", 0));
  return sig.str();
}

Site make_site(const ConfigRecord& joined, const std::string& data_dir,
               const std::function<void(const std::string&)>& log) {
  ShardFormat format;
  format.format = config_string(joined, "format", "");
  format.feature_shape = split_ints(config_string(joined, "feature_shape", ""));
  format.scaling.mean = split_doubles(config_string(joined, "scaling_mean", ""));
  format.scaling.stddev = split_doubles(config_string(joined, "scaling_stddev", ""));
  const std::string classes = config_string(joined, "classes", "");
  if (!classes.empty()) {
    std::stringstream in(classes);
    std::string c;
    while (std::getline(in, c, '\x1f')) format.class_names.push_back(c);
  }
  format.label_column = config_string(joined, "label", "");
  format.num_classes = config_int(joined, "num_classes", 0);
  const std::string model = config_string(joined, "model", "");
  const std::int64_t num_classes = config_int(joined, "num_classes", 0);
  const double val_fraction = config_double(joined, "val_fraction", 0.1);
  const auto seed = static_cast<std::uint64_t>(config_int(joined, "data_seed", 0));

  TensorData all = read_shard(data_dir, format);
  std::vector<std::int64_t> order(static_cast<std::size_t>(all.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const auto n_val = static_cast<std::size_t>(static_cast<double>(order.size()) * val_fraction);
  std::vector<std::int64_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::vector<std::int64_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  if (train.empty()) throw Error::invalid_argument("data: " + data_dir + " leaves no training examples");
  Site site;
  site.app = std::make_shared<TorchClient>(make_model(model, ModelInput{format.feature_shape, num_classes}),
                                           select_rows(all, train), select_rows(all, val), seed);
  site.signature = site_signature(joined);
  log("data " + data_dir + ": " + std::to_string(train.size()) + " training / " + std::to_string(val.size()) +
      " validation examples, fingerprint " + site.app->data_fingerprint().substr(0, 16) + "; model " + model);
  return site;
}

// Posts heartbeats on its own connection while the site is busy.
class Heartbeat {
 public:
  Heartbeat(Connection connection, std::string session, double every)
      : connection_(std::move(connection)), session_(std::move(session)), every_(every),
        thread_([this] { loop(); }) {}
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::duration<double>(every_), [this] { return stop_; })) {
      lock.unlock();
      try {
        connection_.send(Poco::Net::HTTPRequest::HTTP_POST, "/v1/heartbeat", session_, "", 10);
      } catch (...) {
        // the main loop notices a lost server when it posts the result
      }
      lock.lock();
    }
  }
  Connection connection_;
  std::string session_;
  double every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

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
    Poco::Net::initializeSSL();
    context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", options.tls_ca,
                                     Poco::Net::Context::VERIFY_RELAXED, 9, options.tls_ca.empty());
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    Poco::Net::SSLManager::InvalidCertificateHandlerPtr reject(new Poco::Net::RejectCertificateHandler(false));
    Poco::Net::SSLManager::instance().initializeClient(nullptr, reject, context);
  } else if (!options.tls_ca.empty()) {
    throw Error::invalid_argument("--tls-ca needs an https:// server");
  }
  torch::set_num_threads(options.threads > 0 ? options.threads : static_cast<int>(ThreadPool::cores()));
  const std::uint64_t max_bytes = static_cast<std::uint64_t>(options.max_message_mb) << 20;
  std::string instance;
  {
    std::random_device entropy;
    char buf[3];
    for (int i = 0; i < 16; ++i) {
      std::snprintf(buf, sizeof buf, "%02x", entropy() & 0xff);
      instance += buf;
    }
  }
  Connection connection(uri, context, options.token, instance, max_bytes);

  Site site;
  ConfigRecord joined;
  std::string session, job_id, name;
  double poll_seconds = 5, heartbeat_seconds = 5;
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
  auto refused = [&](const Reply& r) {
    if (r.status == 401) {
      throw Error(ErrorCode::kUnauthenticated, "the server at " + options.server + " refused the token: " + trimmed(r.body));
    }
  };

  while (true) {
    if (stopped()) throw Error::cancelled("stopped by request");
    if (session.empty()) {
      Reply r;
      try {
        r = connection.send(Poco::Net::HTTPRequest::HTTP_POST, "/v1/join", "", "", 30);
      } catch (const Poco::Exception& e) {
        trouble("cannot reach " + options.server + ": " + e.displayText());
        continue;
      }
      last_contact = Clock::now();
      refused(r);
      if (r.status != 200) {  // e.g. 409: another process holds this token's session; back off, do not spin
        trouble("join answered " + std::to_string(r.status) + ": " + trimmed(r.body));
        continue;
      }
      contact();
      Message m = decode_message(r.body);
      if (m.kind != MessageKind::kJoined) throw Error::corruption("join answered with a " + std::string(message_kind_name(m.kind)));
      joined = m.header;
      session = config_string(joined, "session", "");
      job_id = config_string(joined, "job_id", "");
      name = config_string(joined, "client", "");
      poll_seconds = config_double(joined, "poll_seconds", 5);
      heartbeat_seconds = config_double(joined, "heartbeat_seconds", 5);
      if (site.signature != site_signature(joined)) site = make_site(joined, options.data, log);
      log("joined " + options.server + " as " + name + " for job " + job_id);
      continue;
    }

    Reply r;
    try {
      r = connection.send(Poco::Net::HTTPRequest::HTTP_GET, "/v1/task", session, "", poll_seconds + 30);
    } catch (const Poco::Exception& e) {
      trouble("lost " + options.server + ": " + e.displayText());
      continue;
    }
    contact();
    refused(r);
    if (r.status == 409) {
      log("server says: " + trimmed(r.body));
      session.clear();
      continue;
    }
    if (r.status != 200) {
      trouble("task request answered " + std::to_string(r.status) + ": " + trimmed(r.body));
      continue;
    }
    Message task = decode_message(r.body);
    r.body.clear();
    if (task.kind == MessageKind::kWait) continue;
    if (task.kind == MessageKind::kDone) {
      log("job " + job_id + " is done");
      return;
    }
    if (task.kind != MessageKind::kFitTask && task.kind != MessageKind::kEvaluateTask) {
      throw Error::corruption(std::string("the server sent a ") + message_kind_name(task.kind) + " as a task");
    }
    if (config_string(task.header, "job_id", "") != job_id) {
      session.clear();  // another job: join again for its model and data format
      continue;
    }

    // --- run the task ---
    ConfigRecord reply_header = {{"job_id", job_id},
                                 {"task_id", config_int(task.header, "task_id", 0)},
                                 {"round", config_int(task.header, "round", 0)}};
    ConfigRecord config;
    for (const auto& [k, v] : task.header) {
      if (k.rfind("config/", 0) == 0) config[k.substr(7)] = v;
    }
    MessageKind kind;
    std::string payload;
    const int round = static_cast<int>(config_int(task.header, "round", 0));
    // Heartbeats from the task's arrival until its result is delivered: a
    // long decode, training or upload is not silence.
    Heartbeat heartbeat(Connection(uri, context, options.token, instance, 1 << 20), session, heartbeat_seconds);
    {
      const auto start = Clock::now();
      try {
        const Parameters global = decode_parameters(task.payload);
        task.payload.clear();
        if (task.kind == MessageKind::kFitTask) {
          FitRes res = site.app->fit(global, config);
          kind = MessageKind::kFitResult;
          reply_header["num_examples"] = res.num_examples;
          reply_header["data_fingerprint"] = res.data_fingerprint;
          for (const auto& [k, v] : res.metrics) reply_header["metric/" + k] = v;
          payload = encode_parameters(res.parameters);
        } else {
          EvaluateRes res = site.app->evaluate(global, config);
          kind = MessageKind::kEvaluateResult;
          reply_header["num_examples"] = res.num_examples;
          reply_header["loss"] = res.loss;
          for (const auto& [k, v] : res.metrics) reply_header["metric/" + k] = v;
        }
        reply_header["train_seconds"] = seconds_since(start);
      } catch (const std::exception& e) {
        kind = MessageKind::kTaskFailed;
        reply_header["error"] = truncate_utf8(to_valid_utf8(e.what()), 2000);
        log("round " + std::to_string(round) + ": " + message_kind_name(task.kind) + " failed: " + e.what());
      }
    }
    std::string body = encode_message({kind, reply_header, std::move(payload)});
    const auto server_max = static_cast<std::uint64_t>(config_int(joined, "max_message_mb", 1 << 20)) << 20;
    if (body.size() > server_max) {  // it would be refused (413) however often it is sent
      const std::string why = "the result of " + std::to_string(body.size() >> 20) +
                              " MB is over the server's max_message_mb (" + std::to_string(server_max >> 20) + ")";
      log("round " + std::to_string(round) + ": " + why);
      const ConfigRecord failed = {{"job_id", reply_header.at("job_id")},
                                   {"task_id", reply_header.at("task_id")},
                                   {"round", reply_header.at("round")},
                                   {"error", why}};
      body = encode_message({MessageKind::kTaskFailed, failed, ""});
      kind = MessageKind::kTaskFailed;
    }
    while (true) {  // deliver the result (the server may be briefly away)
      if (stopped()) throw Error::cancelled("stopped by request");
      Reply posted;
      try {
        posted = connection.send(Poco::Net::HTTPRequest::HTTP_POST, "/v1/result", session, body, 120);
      } catch (const Poco::Exception& e) {
        trouble("cannot send the round " + std::to_string(round) + " result: " + e.displayText());
        continue;
      }
      contact();
      refused(posted);
      if (posted.status == 204) {
        log("round " + std::to_string(round) + ": " + message_kind_name(kind) + " sent");
      } else {
        log("round " + std::to_string(round) + ": the server refused the " + message_kind_name(kind) + " (" +
            std::to_string(posted.status) + "): " + trimmed(posted.body));
        if (posted.status == 409) session.clear();
      }
      break;
    }
  }
}

}  // namespace fedtrack
