// The network server: Poco's HTTP connection handling (a TCPServerDispatcher
// fed by our own connection gate, network_gate.h, which lets only complete,
// authenticated request heads reach its worker threads) in front of the
// shared round loop.
// Each connected site is a RemoteClient (a ClientProxy) whose fit() and
// evaluate() post a task to the site's mailbox and wait for the answer, the
// round timeout or the site's silence, whichever comes first.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnectionFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServerDispatcher.h>
#include <Poco/ThreadPool.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/network.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/text.h"
#include "thread_pool.h"
#include "wire.h"
#include "job_runtime.h"
#include "network_gate.h"

namespace fedtrack {
namespace {

using Clock = std::chrono::steady_clock;
using Poco::Net::HTTPResponse;

constexpr double kPollSeconds = 5;
constexpr double kSharedTokenWarningSeconds = 60;  // at most one "token used by more than one process" line
// Connections the kernel completes before the gate accepts them: room for a
// burst while the gate thread waits for a core (the kernel caps it at somaxconn).
constexpr int kListenBacklog = 1024;

std::string join_doubles(const std::vector<double>& values) {
  std::string out;
  char buf[40];
  for (double v : values) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::random_device entropy;
  std::string out;
  char buf[3];
  for (std::size_t i = 0; i < bytes; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", entropy() & 0xff);
    out += buf;
  }
  return out;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Text that came from a client (an error message, a name, a key), before it
// goes into a reply, a log line or a round's record: valid UTF-8, bounded.
std::string edge_text(std::string_view text, std::size_t max_bytes = 1000) {
  return truncate_utf8(to_valid_utf8(text.substr(0, max_bytes + 4)), max_bytes);
}

// The name owning a bearer token, or nullptr. Compared with every token in
// constant time per byte, so timing does not tell how much of one matched.
const std::string* token_owner(const std::map<std::string, std::string>& names_by_token, const std::string& given) {
  const std::string* name = nullptr;
  for (const auto& [token, owner] : names_by_token) {
    unsigned char diff = token.size() == given.size() ? 0 : 1;
    for (std::size_t i = 0; i < token.size(); ++i) {
      diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff == 0) name = &owner;
  }
  return name;
}

// One task handed to a site; guarded by Hub::mutex.
struct Task {
  std::uint64_t id = 0;
  MessageKind kind = MessageKind::kFitTask;
  int round = 0;
  std::string head;
  std::shared_ptr<const std::string> payload;
  std::shared_ptr<const Parameters> global;
  bool delivered = false;
  std::string delivered_session;
  bool done = false;
  std::optional<Message> result;       // header only
  std::optional<Parameters> parameters;  // a fit result's model, checked
  std::string failure;
  std::uint64_t bytes_up = 0;
  Clock::time_point posted{};
  double download_seconds = 0;  // posted -> the task's last byte written to the client
};

class Hub;

class RemoteClient : public ClientProxy {
 public:
  RemoteClient(std::string name, Hub& hub) : ClientProxy(std::move(name)), hub_(hub) {}
  FitRes fit(const FitIns& ins, TransferStats& transfer) override;
  EvaluateRes evaluate(const EvaluateIns& ins, TransferStats& transfer) override;

  // Guarded by Hub::mutex.
  std::string session;
  Clock::time_point last_seen{};
  int open_requests = 0;  // polls held, models being sent or results read: the client is there
  bool told_done = false;  // heard that the job finished
  bool registered = false;
  std::shared_ptr<Task> task;
  std::string instance;  // the client process behind `session` (X-Fedtrack-Instance of its join)
  std::string address;   // where that join came from
  std::uint64_t refused_joins = 0;  // joins of another process while this session was live
  std::optional<Clock::time_point> warned;  // the last warning about them

 private:
  std::shared_ptr<Task> run_task(MessageKind kind, int round, const ConfigRecord& config,
                                 const std::shared_ptr<const Parameters>& global, const Deadline& deadline,
                                 TransferStats& transfer);
  Hub& hub_;
};

// What the HTTP threads and the round loop share.
class Hub {
 public:
  Hub(const JobSpec& job, std::string job_id, ClientManager& clients, ConfigRecord job_header,
      std::function<void(const std::string&)> log)
      : job(job), job_id(std::move(job_id)), clients(clients), job_header(std::move(job_header)), log_(std::move(log)) {}

  void log(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (log_) log_(line);
  }

  // The global model's encoding, made once per model for all its tasks.
  std::shared_ptr<const std::string> payload_for(const std::shared_ptr<const Parameters>& global) {
    std::lock_guard<std::mutex> lock(payload_mutex_);
    if (cached_global_ != global) {
      cached_payload_ = std::make_shared<const std::string>(encode_parameters(*global));
      cached_global_ = global;
    }
    return cached_payload_;
  }

  // Under `mutex`: take a silent client out of sampling.
  void unregister_locked(RemoteClient& c, const std::string& why) {
    if (!c.registered) return;
    c.registered = false;
    clients.remove(c.id());
    log("client " + c.id() + " left: " + why);
  }

  void register_locked(const std::shared_ptr<RemoteClient>& c) {
    if (c->registered) return;
    c->registered = true;
    clients.add(c);
  }

  std::size_t registered_count_locked() const {
    std::size_t n = 0;
    for (const auto& [name, c] : by_name) n += c->registered ? 1 : 0;
    return n;
  }

  // Under `mutex`: no request for server.client_timeout and none open now.
  bool silent_locked(const RemoteClient& c) const {
    return c.open_requests == 0 && seconds(Clock::now() - c.last_seen) > job.server.client_timeout;
  }

  void prune_silent_locked() {
    const auto now = Clock::now();
    for (auto& [name, c] : by_name) {
      if (c->registered && silent_locked(*c)) {
        unregister_locked(*c, "silent for " + std::to_string(static_cast<int>(seconds(now - c->last_seen))) + " s");
      }
    }
  }

  const JobSpec& job;
  const std::string job_id;
  ClientManager& clients;
  const ConfigRecord job_header;
  std::map<std::string, std::string> names_by_token;
  std::map<std::string, std::shared_ptr<RemoteClient>> by_name;

  std::mutex mutex;
  std::condition_variable changed;
  std::function<bool()> stop_requested;  // SIGINT / SIGTERM
  bool done = false;      // the job finished: tell pollers
  bool stopping = false;  // the job ended otherwise: wake every wait
  std::uint64_t next_task = 1;

 private:
  std::function<void(const std::string&)> log_;
  std::mutex log_mutex_;
  std::mutex payload_mutex_;
  std::shared_ptr<const Parameters> cached_global_;
  std::shared_ptr<const std::string> cached_payload_;
};

std::shared_ptr<Task> RemoteClient::run_task(MessageKind kind, int round, const ConfigRecord& config,
                                             const std::shared_ptr<const Parameters>& global,
                                             const Deadline& deadline, TransferStats& transfer) {
  auto task = std::make_shared<Task>();
  task->kind = kind;
  task->round = round;
  task->global = global;
  task->payload = hub_.payload_for(global);
  {
    std::lock_guard<std::mutex> lock(hub_.mutex);
    task->id = hub_.next_task++;
  }
  ConfigRecord header = {{"job_id", hub_.job_id},
                         {"task_id", static_cast<std::int64_t>(task->id)},
                         {"round", static_cast<std::int64_t>(round)}};
  for (const auto& [k, v] : config) header["config/" + k] = v;
  task->head = encode_message_head(kind, header, task->payload->size());
  transfer.bytes_down = task->head.size() + task->payload->size();

  std::unique_lock<std::mutex> lock(hub_.mutex);
  task->posted = Clock::now();
  this->task = task;
  hub_.changed.notify_all();
  const double silence_limit = hub_.job.server.client_timeout;
  while (!task->done) {
    const auto now = Clock::now();
    if (hub_.stopping || (hub_.stop_requested && hub_.stop_requested())) {
      task->failure = "the job is stopping";
    } else if (deadline && now >= *deadline) {
      task->failure = std::string("no result within server.round_timeout (") +
                      std::to_string(static_cast<int>(hub_.job.server.round_timeout)) + " s)";
    } else if (hub_.silent_locked(*this)) {
      task->failure = "silent for more than server.client_timeout (" + std::to_string(static_cast<int>(silence_limit)) +
                      " s): crashed, hung or disconnected";
      hub_.unregister_locked(*this, task->failure);
    }
    if (!task->failure.empty()) {
      task->done = true;
      break;
    }
    hub_.changed.wait_for(lock, std::chrono::milliseconds(200));
  }
  if (this->task == task) this->task.reset();
  transfer.bytes_up = task->bytes_up;
  transfer.download_seconds = task->download_seconds;
  if (!task->failure.empty()) throw Error::unavailable(task->failure);
  if (auto it = task->result->header.find("train_seconds"); it != task->result->header.end()) {
    if (const auto* d = std::get_if<double>(&it->second)) transfer.train_seconds = *d;
  }
  return task;
}

Metrics metrics_of(const ConfigRecord& header) {
  Metrics m;
  for (const auto& [k, v] : header) {
    if (k.rfind("metric/", 0) != 0) continue;
    if (const auto* d = std::get_if<double>(&v)) m[k.substr(7)] = *d;
    else if (const auto* i = std::get_if<std::int64_t>(&v)) m[k.substr(7)] = static_cast<double>(*i);
  }
  return m;
}

FitRes RemoteClient::fit(const FitIns& ins, TransferStats& transfer) {
  auto task = run_task(MessageKind::kFitTask, static_cast<int>(config_int(ins.config, "round", 0)), ins.config,
                       ins.parameters, ins.deadline, transfer);
  FitRes res;
  res.parameters = std::move(*task->parameters);
  res.num_examples = config_int(task->result->header, "num_examples", 0);
  res.metrics = metrics_of(task->result->header);
  res.data_fingerprint = config_string(task->result->header, "data_fingerprint", "");
  return res;
}

EvaluateRes RemoteClient::evaluate(const EvaluateIns& ins, TransferStats& transfer) {
  auto task = run_task(MessageKind::kEvaluateTask, static_cast<int>(config_int(ins.config, "round", 0)), ins.config,
                       ins.parameters, ins.deadline, transfer);
  EvaluateRes res;
  res.loss = config_double(task->result->header, "loss", 0);
  res.num_examples = config_int(task->result->header, "num_examples", 0);
  res.metrics = metrics_of(task->result->header);
  return res;
}

// --- HTTP ---------------------------------------------------------------------

// A refusal: the status and the reason the client is told (and we log).
struct Refusal {
  HTTPResponse::HTTPStatus status;
  std::string reason;
  bool logged = true;  // false: the caller logs (rate-limited) itself
};

// What a result may carry: every key, its type and its size are checked
// before the result is taken, so a result answered 204 is never counted as
// failed later, and nothing unbounded or ill-formed reaches the round's
// record (MLflow tags and metrics, the journal, the log).
constexpr std::size_t kMaxResultMetrics = 64;
constexpr std::size_t kMaxMetricKeyBytes = 128;  // after "metric/"; MLflow allows 250 for client/<name>/<key>
constexpr std::size_t kMaxFingerprintBytes = 128;
constexpr std::size_t kMaxErrorTextBytes = 2000;

void check_result_header(const Message& m) {
  // A task failure may still carry the fields of the result it replaces
  // (older clients send them); they are checked the same way and ignored.
  const bool failed = m.kind == MessageKind::kTaskFailed;
  const bool fit = m.kind == MessageKind::kFitResult || failed,
             evaluate = m.kind == MessageKind::kEvaluateResult || failed;
  const std::string what = std::string("a ") + message_kind_name(m.kind) + ": ";
  auto bad = [&](const std::string& key, const std::string& why) {
    return Refusal{HTTPResponse::HTTP_BAD_REQUEST, what + "'" + edge_text(key, 150) + "' " + why};
  };
  auto is_int = [](const Scalar& v) { return std::holds_alternative<std::int64_t>(v); };
  auto is_number = [](const Scalar& v) {
    return std::holds_alternative<std::int64_t>(v) || std::holds_alternative<double>(v);
  };
  std::size_t metrics = 0;
  for (const auto& [key, value] : m.header) {
    if (key == "job_id") {
      if (!std::holds_alternative<std::string>(value)) throw bad(key, "must be a string");
    } else if (key == "task_id" || key == "round") {
      if (!is_int(value)) throw bad(key, "must be an integer");
    } else if (key == "num_examples" && (fit || evaluate)) {
      if (!is_int(value)) throw bad(key, "must be an integer");
    } else if (key == "train_seconds" && (fit || evaluate)) {
      if (!is_number(value)) throw bad(key, "must be a number");
    } else if (key == "loss" && evaluate) {
      if (!is_number(value)) throw bad(key, "must be a number");
    } else if (key == "data_fingerprint" && fit) {
      const auto* text = std::get_if<std::string>(&value);
      if (!text) throw bad(key, "must be a string");
      const bool hex = !text->empty() && text->size() <= kMaxFingerprintBytes &&
                       std::all_of(text->begin(), text->end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
      if (!hex) throw bad(key, "must be 1 to " + std::to_string(kMaxFingerprintBytes) + " hex digits");
    } else if (key == "error" && failed) {
      if (!std::holds_alternative<std::string>(value)) throw bad(key, "must be a string");
    } else if (key.rfind("metric/", 0) == 0 && (fit || evaluate)) {
      const std::string_view name = std::string_view(key).substr(7);
      const bool ok = !name.empty() && name.size() <= kMaxMetricKeyBytes &&
                      std::all_of(name.begin(), name.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
                               c == '/' || c == ' ' || c == ':';
                      });
      if (!ok) {
        throw bad(key, "is not a metric name (1 to " + std::to_string(kMaxMetricKeyBytes) +
                           " characters of letters, digits, _ . - / : and space)");
      }
      if (!is_number(value)) throw bad(key, "must be a number");
      if (++metrics > kMaxResultMetrics) {
        throw Refusal{HTTPResponse::HTTP_BAD_REQUEST,
                      what + "more than " + std::to_string(kMaxResultMetrics) + " metrics"};
      }
    } else {
      throw bad(key, "is not a field of this message");
    }
  }
  for (const char* required : {"job_id", "task_id", "round"}) {
    if (!m.header.count(required)) throw bad(required, "is missing");
  }
  if (!failed && !m.header.count("num_examples")) throw bad("num_examples", "is missing");
  if (m.kind == MessageKind::kEvaluateResult && !m.header.count("loss")) throw bad("loss", "is missing");
}

// While a request of a known client is being served (a long poll held, a
// model being sent, a result being read) that client is not silent.
class Presence {
 public:
  Presence(Hub& hub, const std::string& name) : hub_(hub) {
    std::lock_guard<std::mutex> lock(hub_.mutex);
    auto it = hub_.by_name.find(name);
    if (it == hub_.by_name.end()) return;
    client_ = it->second;
    ++client_->open_requests;
  }
  ~Presence() {
    if (!client_) return;
    std::lock_guard<std::mutex> lock(hub_.mutex);
    --client_->open_requests;
    client_->last_seen = Clock::now();
  }
  Presence(const Presence&) = delete;
  Presence& operator=(const Presence&) = delete;

 private:
  Hub& hub_;
  std::shared_ptr<RemoteClient> client_;
};

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(Hub& hub) : hub_(hub) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) override {
    std::string who = req.clientAddress().toString();
    try {
      const std::string name = authenticate(req);
      who = "client " + name + " (" + who + ")";
      route(name, req, resp);
    } catch (const Refusal& r) {
      const std::string reason = edge_text(r.reason);
      if (r.logged) hub_.log("refused " + edge_text(req.getMethod(), 20) + " " + edge_text(req.getURI(), 100) + " from " + who + ": " + reason);
      resp.setKeepAlive(false);  // a body may be left unread: never parse it as the next request
      send_text(resp, r.status, reason);
    } catch (const Poco::Exception& e) {
      hub_.log("connection to " + who + " failed: " + edge_text(e.displayText()));
    } catch (const std::exception& e) {
      // A bug or a library error: the log gets its first line, the client a
      // generic answer (never internals such as a native backtrace).
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));
      hub_.log("internal error serving " + edge_text(req.getMethod(), 20) + " " + edge_text(req.getURI(), 100) + " from " + who + ": " + edge_text(what, 500));
      try {
        resp.setKeepAlive(false);
        send_text(resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "internal error");
      } catch (...) {
      }
    } catch (...) {
      hub_.log("internal error serving " + who + ": an unknown exception");
      try {
        resp.setKeepAlive(false);
        send_text(resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "internal error");
      } catch (...) {
      }
    }
  }

 private:
  static void send_text(Poco::Net::HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& text) {
    if (resp.sent()) return;
    resp.setStatusAndReason(status);
    resp.setContentType("text/plain; charset=utf-8");
    resp.setContentLength64(static_cast<Poco::UInt64>(text.size() + 1));
    resp.send() << text << "\n";
  }

  // The head goes through Poco's response stream; a model payload is then
  // written straight to the connection's socket in large pieces (the stream
  // would cut it into 4 KB writes).
  static void send_message(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                           const std::string& head, const std::string* payload) {
    resp.setStatusAndReason(HTTPResponse::HTTP_OK);
    resp.setContentType("application/x-fedtrack-message");
    resp.setContentLength64(static_cast<Poco::UInt64>(head.size() + (payload ? payload->size() : 0)));
    std::ostream& out = resp.send();
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    out.flush();
    if (!payload || payload->empty()) return;
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    if (!impl) {
      out.write(payload->data(), static_cast<std::streamsize>(payload->size()));
      out.flush();
      return;
    }
    Poco::Net::StreamSocket& socket = impl->socket();
    std::size_t sent = 0;
    while (sent < payload->size()) {
      const int n = socket.sendBytes(payload->data() + sent,
                                     static_cast<int>(std::min<std::size_t>(payload->size() - sent, 4u << 20)));
      if (n <= 0) throw Poco::IOException("connection closed while sending the model");
      sent += static_cast<std::size_t>(n);
    }
  }

  std::string authenticate(Poco::Net::HTTPServerRequest& req) {
    const std::string auth = req.get("Authorization", "");
    const std::string prefix = "Bearer ";
    if (auth.compare(0, prefix.size(), prefix) != 0) {
      throw Refusal{HTTPResponse::HTTP_UNAUTHORIZED, "no bearer token (Authorization: Bearer TOKEN)"};
    }
    const std::string* name = token_owner(hub_.names_by_token, auth.substr(prefix.size()));
    if (!name) throw Refusal{HTTPResponse::HTTP_UNAUTHORIZED, "unknown token"};
    return *name;
  }

  std::string read_body(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    const std::uint64_t limit = static_cast<std::uint64_t>(hub_.job.server.max_message_mb) << 20;
    const auto declared = req.getContentLength64();
    if (declared >= 0 && static_cast<std::uint64_t>(declared) > limit) {
      resp.setKeepAlive(false);  // the unread body must not be taken for the next request
      throw Refusal{HTTPResponse::HTTP_REQUESTENTITYTOOLARGE,
                    "message of " + std::to_string(declared) + " bytes is over server.max_message_mb (" +
                        std::to_string(hub_.job.server.max_message_mb) + " MB)"};
    }
    std::string body;
    if (declared > 0) body.reserve(static_cast<std::size_t>(declared));
    std::istream& in = req.stream();
    char buf[1 << 16];
    while (in) {
      in.read(buf, sizeof buf);
      body.append(buf, static_cast<std::size_t>(in.gcount()));
      if (body.size() > limit) {
        resp.setKeepAlive(false);
        throw Refusal{HTTPResponse::HTTP_REQUESTENTITYTOOLARGE, "message is over server.max_message_mb"};
      }
    }
    if (declared >= 0 && body.size() != static_cast<std::uint64_t>(declared)) {
      throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, "body ended after " + std::to_string(body.size()) + " of " +
                                                        std::to_string(declared) + " bytes"};
    }
    return body;
  }

  // The client of a session-bearing request (held lock).
  std::shared_ptr<RemoteClient> session_client(const std::string& name, Poco::Net::HTTPServerRequest& req) {
    auto it = hub_.by_name.find(name);
    const std::string session = req.get("X-Fedtrack-Session", "");
    if (it == hub_.by_name.end() || it->second->session.empty() || it->second->session != session) {
      throw Refusal{HTTPResponse::HTTP_CONFLICT, "unknown session (the server restarted or the client joined again): join again"};
    }
    it->second->last_seen = Clock::now();
    return it->second;
  }

  void route(const std::string& name, Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    const std::string path = req.getURI();
    const std::string& method = req.getMethod();
    if (path == "/v1/join" && method == "POST") return join(name, req, resp);
    if (path == "/v1/task" && method == "GET") return poll(name, req, resp);
    if (path == "/v1/result" && method == "POST") return result(name, req, resp);
    if (path == "/v1/heartbeat" && method == "POST") {
      std::lock_guard<std::mutex> lock(hub_.mutex);
      session_client(name, req);
      resp.setStatusAndReason(HTTPResponse::HTTP_NO_CONTENT);
      resp.setContentLength(0);
      resp.send();
      return;
    }
    throw Refusal{HTTPResponse::HTTP_NOT_FOUND, "no such endpoint: " + method + " " + path};
  }

  void join(const std::string& name, Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    read_body(req, resp);
    ConfigRecord header = hub_.job_header;
    const std::string instance = edge_text(req.get("X-Fedtrack-Instance", ""), 64);
    const std::string address = req.clientAddress().host().toString();
    {
      std::lock_guard<std::mutex> lock(hub_.mutex);
      auto& client = hub_.by_name[name];
      if (!client) client = std::make_shared<RemoteClient>(name, hub_);
      const bool again = !client->session.empty();
      // One token, one process: another process joining with the token of a
      // live session is refused (it would take the session over, and the two
      // would take it from each other in a loop).
      if (again && client->instance != instance && !hub_.silent_locked(*client)) {
        ++client->refused_joins;
        const auto now = Clock::now();
        if (!client->warned || seconds(now - *client->warned) >= kSharedTokenWarningSeconds) {
          client->warned = now;
          hub_.log("warning: the token of client " + name + " is used by more than one process: a join from " +
                   address + " was refused while the session from " + client->address + " is live (" +
                   std::to_string(client->refused_joins) + " refused so far; next warning in " +
                   std::to_string(static_cast<int>(kSharedTokenWarningSeconds)) + " s at the earliest)");
        }
        throw Refusal{HTTPResponse::HTTP_CONFLICT,
                      "token of '" + name + "' already in use by a live session from " + client->address +
                          "; wait for it to end (silent for server.client_timeout = " +
                          std::to_string(static_cast<int>(hub_.job.server.client_timeout)) +
                          " s) or use another token",
                      false};
      }
      client->instance = instance;
      client->address = address;
      client->session = random_hex(16);
      client->last_seen = Clock::now();
      if (client->task && client->task->delivered && !client->task->done) {
        client->task->failure = "the client joined again and lost its task";
        client->task->done = true;
      }
      hub_.register_locked(client);
      hub_.changed.notify_all();
      header["client"] = name;
      header["session"] = client->session;
      hub_.log("client " + name + (again ? " joined again" : " joined") + " from " + req.clientAddress().toString() +
               " (" + std::to_string(hub_.registered_count_locked()) + " connected)");
    }
    header["data_seed"] = static_cast<std::int64_t>(task_seed(hub_.job.seed, 0, name) >> 1);
    send_message(req, resp, encode_message_head(MessageKind::kJoined, header, 0), nullptr);
  }

  void poll(const std::string& name, Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    Presence presence(hub_, name);
    std::shared_ptr<Task> task;
    bool done = false;
    {
      std::unique_lock<std::mutex> lock(hub_.mutex);
      auto client = session_client(name, req);
      const std::string session = client->session;
      if (!hub_.done) hub_.register_locked(client);
      const auto until = Clock::now() + std::chrono::milliseconds(static_cast<int>(kPollSeconds * 1000));
      while (true) {
        if (client->session != session) {
          throw Refusal{HTTPResponse::HTTP_CONFLICT, "session replaced by a newer join"};
        }
        // A task not yet delivered, or delivered to this session that asks again (it lost it).
        auto t = client->task;
        if (t && !t->done && (!t->delivered || t->delivered_session == session)) {
          t->delivered = true;
          t->delivered_session = session;
          task = t;
          break;
        }
        if (hub_.done) {
          done = true;
          break;
        }
        if (hub_.stopping || Clock::now() >= until) break;
        hub_.changed.wait_until(lock, until);
      }
      client->last_seen = Clock::now();
    }
    if (task) {
      send_message(req, resp, task->head, task->payload.get());
      std::lock_guard<std::mutex> lock(hub_.mutex);
      task->download_seconds = seconds(Clock::now() - task->posted);
      return;
    }
    const auto kind = done ? MessageKind::kDone : MessageKind::kWait;
    send_message(req, resp, encode_message_head(kind, {{"job_id", hub_.job_id}}, 0), nullptr);
    if (done) {
      std::lock_guard<std::mutex> lock(hub_.mutex);
      if (auto it = hub_.by_name.find(name); it != hub_.by_name.end()) it->second->told_done = true;
      hub_.changed.notify_all();
    }
  }

  void result(const std::string& name, Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    Presence presence(hub_, name);
    const std::string body = read_body(req, resp);
    Message message;
    try {
      message = decode_message(body);
    } catch (const Error& e) {
      throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, e.what()};
    }
    if (message.kind != MessageKind::kFitResult && message.kind != MessageKind::kEvaluateResult &&
        message.kind != MessageKind::kTaskFailed) {
      throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, std::string("a ") + message_kind_name(message.kind) +
                                                        " message is not a result"};
    }
    check_result_header(message);
    std::int64_t task_id = 0, round = 0;
    std::string job_id;
    try {
      job_id = config_string(message.header, "job_id", "");
      task_id = config_int(message.header, "task_id", -1);
      round = config_int(message.header, "round", -1);
    } catch (const Error& e) {
      throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, e.what()};
    }
    if (job_id != hub_.job_id) {
      throw Refusal{HTTPResponse::HTTP_CONFLICT, "result for job '" + job_id + "', this server runs " + hub_.job_id};
    }
    std::shared_ptr<Task> task;
    std::shared_ptr<RemoteClient> client;
    {
      std::lock_guard<std::mutex> lock(hub_.mutex);
      client = session_client(name, req);
      task = client->task;
      if (!task || task->done || static_cast<std::int64_t>(task->id) != task_id) {
        throw Refusal{HTTPResponse::HTTP_CONFLICT, "no open task " + std::to_string(task_id) + " for " + name +
                                                       " (it timed out, was answered, or belongs to another run)"};
      }
      if (task->round != round) {
        throw Refusal{HTTPResponse::HTTP_CONFLICT, "result for round " + std::to_string(round) + ", task " +
                                                       std::to_string(task_id) + " is round " +
                                                       std::to_string(task->round)};
      }
      const bool expected = message.kind == MessageKind::kTaskFailed ||
                            (task->kind == MessageKind::kFitTask) == (message.kind == MessageKind::kFitResult);
      if (!expected) {
        throw Refusal{HTTPResponse::HTTP_CONFLICT, std::string("a ") + message_kind_name(message.kind) + " for a " +
                                                       message_kind_name(task->kind)};
      }
    }
    std::optional<Parameters> parameters;
    std::string rejection;
    if (message.kind == MessageKind::kEvaluateResult) {
      try {
        const double loss = config_double(message.header, "loss", 0);
        if (!std::isfinite(loss)) throw Error::invalid_argument("loss is not finite");
        if (config_int(message.header, "num_examples", -1) < 0) throw Error::invalid_argument("num_examples must be >= 0");
      } catch (const Error& e) {
        rejection = e.what();
      }
    }
    if (message.kind == MessageKind::kFitResult) {
      try {
        parameters = decode_parameters(message.payload);
      } catch (const Error& e) {
        throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, e.what()};
      }
      try {
        check_update(*task->global, *parameters, "update");
        if (config_int(message.header, "num_examples", 0) <= 0) {
          throw Error::invalid_argument("num_examples must be > 0");
        }
      } catch (const Error& e) {
        rejection = e.what();
      }
    }
    message.payload.clear();
    {
      std::lock_guard<std::mutex> lock(hub_.mutex);
      if (task->done || client->task != task) {
        throw Refusal{HTTPResponse::HTTP_CONFLICT, "task " + std::to_string(task_id) + " ended meanwhile"};
      }
      task->bytes_up = body.size();
      if (!rejection.empty()) {
        task->failure = "sent an invalid update: " + edge_text(rejection);
      } else if (message.kind == MessageKind::kTaskFailed) {
        task->failure = "failed on the client: " +
                        edge_text(config_string(message.header, "error", "(no reason given)"), kMaxErrorTextBytes);
      } else {
        task->result = std::move(message);
        task->parameters = std::move(parameters);
      }
      task->done = true;
      hub_.changed.notify_all();
    }
    if (!rejection.empty()) throw Refusal{HTTPResponse::HTTP_UNPROCESSABLE_ENTITY, rejection};
    resp.setStatusAndReason(HTTPResponse::HTTP_NO_CONTENT);
    resp.setContentLength(0);
    resp.send();
  }

  Hub& hub_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(Hub& hub) : hub_(hub) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(hub_);
  }
  // Shuts down the socket of every connection being served (what
  // HTTPServer::stopAll(true) does), so the worker threads return.
  void abort_connections() { serverStopped(this, true); }

 private:
  Hub& hub_;
};

ConfigRecord job_header_for(const JobSpec& job, const std::string& job_id, const DatasetSplits& data) {
  std::string shape;
  for (auto d : data.feature_shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
  std::string classes;
  for (const auto& c : data.class_names) classes += (classes.empty() ? "" : "\x1f") + c;
  return {{"job_id", job_id},
          {"job_name", job.name},
          {"model", job.model},
          {"format", data.format},
          {"feature_shape", shape},
          {"num_classes", data.num_classes},
          {"val_fraction", job.data.val_fraction},
          {"scaling_mean", join_doubles(data.scaling.mean)},
          {"scaling_stddev", join_doubles(data.scaling.stddev)},
          {"classes", classes},
          {"label", data.label_column},
          {"heartbeat_seconds", std::max(0.2, job.server.client_timeout / 5)},
          {"max_message_mb", job.server.max_message_mb},
          {"poll_seconds", kPollSeconds}};
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_tokens_file(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);  // a FIFO or a directory is an Error, never a hang
  } catch (const Error& e) {
    throw Error::invalid_argument("--tokens: cannot read " + path + " (" + e.what() + ")");
  }
  std::istringstream in(text);
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, int> names, tokens;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string name, token, extra;
    if (!(fields >> name)) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (!(fields >> token) || (fields >> extra)) throw Error::invalid_argument(where + "expected 'name token'");
    if (names.count(name)) throw Error::invalid_argument(where + "name '" + name + "' appears twice");
    if (tokens.count(token)) throw Error::invalid_argument(where + "this token is already given to another name");
    if (token.size() < 8) throw Error::invalid_argument(where + "token of '" + name + "' is shorter than 8 characters");
    names[name] = number;
    tokens[token] = number;
    out.emplace_back(name, token);
  }
  if (out.empty()) throw Error::invalid_argument("--tokens: " + path + " names no client");
  return out;
}

JobResult run_network_server(const JobSpec& job, const NetworkServerOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.run.log) options.run.log(line);
  };
  if (options.tokens_file.empty()) throw Error::invalid_argument("--tokens FILE is required (lines 'name token')");
  const auto tokens = read_tokens_file(options.tokens_file);
  if (static_cast<std::int64_t>(tokens.size()) < job.clients.count) {
    throw Error::invalid_argument("--tokens " + options.tokens_file + " names " + std::to_string(tokens.size()) +
                                  " clients, fewer than clients.count = " + std::to_string(job.clients.count) +
                                  " (the server waits for that many before the first round)");
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    throw Error::invalid_argument("--tls-cert and --tls-key go together");
  }
  if (!options.tls_cert.empty()) {  // OpenSSL would block on a FIFO
    check_regular_file(options.tls_cert);
    check_regular_file(options.tls_key);
  }
  torch::set_num_threads(static_cast<int>(ThreadPool::cores()));

  // The server holds only the test split and the training split's scaling.
  DatasetSplits data = at_key(job, "data.dataset", [&] { return load_test_split(job.data, job.seed); });
  log(data.description + ": " + std::to_string(data.test.size()) + " test examples on the server; " +
      std::to_string(tokens.size()) + " client tokens");
  StateKeeper state(options.run.state_path, options.run.resume, job, options.run.job_digest);
  const std::string job_id = state.adopt_job_id(options.run.job_id);
  ServerSide side = make_server_side(job, data, log);

  ClientManager clients(job.seed);
  Hub hub(job, job_id, clients, job_header_for(job, job_id, data), options.run.log);
  for (const auto& [name, token] : tokens) hub.names_by_token[token] = name;
  hub.stop_requested = options.run.stop_requested;

  // --- listen ---
  Poco::Net::SocketAddress address;
  try {
    address = Poco::Net::SocketAddress(options.listen);
  } catch (const Poco::Exception& e) {
    throw Error::invalid_argument("--listen " + options.listen + ": " + e.displayText());
  }
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  const bool tls = !options.tls_cert.empty();
  Poco::Net::Context::Ptr context;
  if (tls) {
    Poco::Net::initializeSSL();
    try {
      context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, options.tls_key, options.tls_cert, "",
                                       Poco::Net::Context::VERIFY_NONE);
      context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    } catch (const Poco::Exception& e) {
      throw Error::invalid_argument("--tls-cert/--tls-key: " + e.displayText());
    }
  }
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
  // accept loop, network_gate.h) holds every new connection until its request
  // head is complete and carries a known token, then hands it to the dispatcher.
  const int max_threads = std::max<int>(32, static_cast<int>(4 * tokens.size() + 8));
  Poco::ThreadPool http_threads(2, max_threads, 30);
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(max_threads);
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(15, 0));
  params->setTimeout(Poco::Timespan(60, 0));
  auto* handlers = new HandlerFactory(hub);
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_ptr(handlers);
  auto* dispatcher = new Poco::Net::TCPServerDispatcher(
      new Poco::Net::HTTPServerConnectionFactory(params, handlers_ptr), http_threads, params);
  struct ReleaseDispatcher {
    Poco::Net::TCPServerDispatcher* d;
    ~ReleaseDispatcher() { d->release(); }
  } release_dispatcher{dispatcher};
  ConnectionGate gate(
      *socket, tls, GateLimits{}, *dispatcher,
      [&hub](const std::string& token) { return token_owner(hub.names_by_token, token) != nullptr; },
      [&hub](const std::string& line) { hub.log(line); });
  // Stops the HTTP side exactly once, on every way out of this function, so
  // no handler thread outlives `hub`.
  bool stopped = false;
  auto stop_serving = [&](bool finished) {
    if (stopped) return;
    stopped = true;
    {
      std::lock_guard<std::mutex> lock(hub.mutex);
      if (finished) hub.done = true; else hub.stopping = true;
      hub.changed.notify_all();
    }
    if (finished && job.server.linger > 0) {  // until every connected client heard it, at most `linger`
      std::unique_lock<std::mutex> lock(hub.mutex);
      const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(job.server.linger));
      hub.changed.wait_until(lock, until, [&] {
        for (const auto& [name, c] : hub.by_name) {
          if (c->registered && !c->told_done) return false;
        }
        return true;
      });
    }
    {
      std::lock_guard<std::mutex> lock(hub.mutex);
      hub.stopping = true;
      hub.changed.notify_all();
    }
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
  server_options.parallelism = static_cast<std::size_t>(tokens.size());
  server_options.stop_requested = options.run.stop_requested;
  server_options.task_seed = job.seed;
  server_options.round_timeout = job.server.round_timeout;
  // The first round this process runs waits for clients.count clients;
  // later rounds sample among those connected (after a short wait for
  // clients.min_available).
  server_options.before_round = [&](int round) {
    std::unique_lock<std::mutex> lock(hub.mutex);
    const bool first = round == first_round;
    const auto need = static_cast<std::size_t>(first ? job.clients.count : job.clients.min_available);
    const auto start = Clock::now();
    auto noted = start;
    hub.prune_silent_locked();
    while (hub.registered_count_locked() < need) {
      if (options.run.stop_requested && options.run.stop_requested()) return;  // the round loop raises kCancelled
      if (!first && seconds(Clock::now() - start) > job.server.client_timeout) return;  // sampling says what is missing
      if (first && seconds(Clock::now() - noted) >= 10) {
        hub.log("waiting for clients: " + std::to_string(hub.registered_count_locked()) + " of " +
                std::to_string(need) + " connected");
        noted = Clock::now();
      }
      hub.changed.wait_for(lock, std::chrono::milliseconds(250));
      hub.prune_silent_locked();
    }
  };
  // The sites' data fingerprints, as their fit results report them.
  struct FingerprintListener : RoundListener {
    std::map<std::string, std::string> by_name;
    void on_round(const RoundSummary& summary) override {
      for (const auto& c : summary.clients) {
        if (c.ok && !c.data_fingerprint.empty()) by_name[c.client_id] = c.data_fingerprint;
      }
    }
  } fingerprints;
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
