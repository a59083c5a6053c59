#include "net/http_endpoints.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

#include "compression/update_codec.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/server.h"
#include "fedtrack/core/text.h"
#include "net/session_io.h"
#include "parameter_stream.h"
#include "wire.h"
#include "privacy/secagg/secagg_messages.h"

namespace fedtrack::net {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// Text that came from a client (an error message, a name, a key), before it
// goes into a reply, a log line or a round's record: valid UTF-8, bounded.
std::string edge_text(std::string_view text, std::size_t max_bytes = 1000) {
  return truncate_utf8(to_valid_utf8(text.substr(0, max_bytes + 4)), max_bytes);
}

// A refusal: the status and the reason the client is told (and we log).
struct Refusal {
  HTTPResponse::HTTPStatus status;
  std::string reason;
  bool logged = true;  // false: logged (rate-limited) elsewhere
};

void send_text(HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& text) {
  if (resp.sent()) return;
  resp.setStatusAndReason(status);
  resp.setContentType("text/plain; charset=utf-8");
  resp.setContentLength64(static_cast<Poco::UInt64>(text.size() + 1));
  resp.send() << text << "\n";
}

void send_no_content(HTTPServerResponse& resp) {
  resp.setStatusAndReason(HTTPResponse::HTTP_NO_CONTENT);
  resp.setContentLength(0);
  resp.send();
}

// The head goes through Poco's response stream; a model payload is then
// written straight to the connection's socket in large pieces (the stream
// would cut it into 4 KB writes).
void send_message(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& head,
                  const std::string* payload) {
  resp.setStatusAndReason(HTTPResponse::HTTP_OK);
  resp.setContentType(kMessageContentType);
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

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(const Endpoints& endpoints) : e_(endpoints) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    std::string who = req.clientAddress().toString();
    try {
      const std::string name = authenticate(req);
      who = "client " + name + " (" + who + ")";
      try {
        route(name, req, resp);
      } catch (const SiteConflict& c) {
        throw Refusal{HTTPResponse::HTTP_CONFLICT, c.what(), c.logged};
      }
    } catch (const Refusal& r) {
      const std::string reason = edge_text(r.reason);
      if (r.logged) e_.log("refused " + edge_text(req.getMethod(), 20) + " " + edge_text(req.getURI(), 100) + " from " + who + ": " + reason);
      resp.setKeepAlive(false);  // a body may be left unread: never parse it as the next request
      send_text(resp, r.status, reason);
    } catch (const Poco::Exception& ex) {
      e_.log("connection to " + who + " failed: " + edge_text(ex.displayText()));
    } catch (const std::exception& ex) {
      // A bug or a library error: the log gets its first line, the client a
      // generic answer (never internals such as a native backtrace).
      std::string what = ex.what();
      what = what.substr(0, what.find('\n'));
      internal_error(req, resp, "internal error serving " + edge_text(req.getMethod(), 20) + " " +
                                    edge_text(req.getURI(), 100) + " from " + who + ": " + edge_text(what, 500));
    } catch (...) {
      internal_error(req, resp, "internal error serving " + who + ": an unknown exception");
    }
  }

 private:
  void internal_error(HTTPServerRequest&, HTTPServerResponse& resp, const std::string& line) {
    e_.log(line);
    try {
      resp.setKeepAlive(false);
      send_text(resp, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "internal error");
    } catch (...) {
    }
  }

  std::string authenticate(HTTPServerRequest& req) {
    const auto token = bearer_token(req.get(kAuthorizationHeader, ""));
    if (!token) throw Refusal{HTTPResponse::HTTP_UNAUTHORIZED, "no bearer token (Authorization: Bearer TOKEN)"};
    const std::string* name = e_.tokens.owner(*token);
    if (!name) throw Refusal{HTTPResponse::HTTP_UNAUTHORIZED, "unknown token"};
    return *name;
  }

  // 413 for a declared body over server.max_message_mb.
  void check_declared_size(std::int64_t declared, HTTPServerResponse& resp) {
    const std::uint64_t limit = static_cast<std::uint64_t>(e_.max_message_mb) << 20;
    if (declared >= 0 && static_cast<std::uint64_t>(declared) > limit) {
      resp.setKeepAlive(false);  // the unread body must not be taken for the next request
      throw Refusal{HTTPResponse::HTTP_REQUESTENTITYTOOLARGE,
                    "message of " + std::to_string(declared) + " bytes is over server.max_message_mb (" +
                        std::to_string(e_.max_message_mb) + " MB)"};
    }
  }

  std::string read_body(HTTPServerRequest& req, HTTPServerResponse& resp) {
    const std::uint64_t limit = static_cast<std::uint64_t>(e_.max_message_mb) << 20;
    const auto declared = req.getContentLength64();
    check_declared_size(declared, resp);
    std::string body;
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    if (declared >= 0 && impl) {  // straight into the body, in large socket reads (net/session_io.h)
      body.resize(static_cast<std::size_t>(declared));
      const std::size_t got = read_fully(impl->session(), body.data(), body.size());
      if (got != body.size()) {
        throw Refusal{HTTPResponse::HTTP_BAD_REQUEST,
                      "body ended after " + std::to_string(got) + " of " + std::to_string(declared) + " bytes"};
      }
      return body;
    }
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

  static std::string session_of(HTTPServerRequest& req) { return req.get(kSessionHeader, ""); }

  void route(const std::string& name, HTTPServerRequest& req, HTTPServerResponse& resp) {
    const std::string path = req.getURI();
    const std::string& method = req.getMethod();
    if (path == kJoinPath && method == "POST") return join(name, req, resp);
    if (path == kTaskPath && method == "GET") return poll(name, req, resp);
    if (path == kResultPath && method == "POST") return result(name, req, resp);
    if (path == kHeartbeatPath && method == "POST") {
      e_.registry.heartbeat(name, session_of(req));
      return send_no_content(resp);
    }
    throw Refusal{HTTPResponse::HTTP_NOT_FOUND, "no such endpoint: " + method + " " + path};
  }

  void join(const std::string& name, HTTPServerRequest& req, HTTPServerResponse& resp) {
    read_body(req, resp);
    const auto joining = e_.registry.join(name, edge_text(req.get(kInstanceHeader, ""), 64),
                                          req.clientAddress().host().toString(), req.clientAddress().toString());
    Joined joined = e_.job;
    joined.client = name;
    joined.session = joining.session;
    joined.data_seed = static_cast<std::int64_t>(task_seed(e_.job_seed, 0, name) >> 1);
    send_message(req, resp, encode_joined(joined), nullptr);
  }

  void poll(const std::string& name, HTTPServerRequest& req, HTTPServerResponse& resp) {
    SitePresence presence(e_.registry, name);
    const auto answer = e_.registry.poll(name, session_of(req));
    if (answer.task) {
      send_message(req, resp, answer.task->head, answer.task->payload.get());
      e_.registry.task_sent(*answer.task);
      return;
    }
    TaskHead head;
    head.kind = answer.done ? MessageKind::kDone : MessageKind::kWait;
    head.job_id = e_.job.job_id;
    send_message(req, resp, encode_task_head(head, 0), nullptr);
    if (answer.done) e_.registry.told_done(name);
  }

  // POST /v1/result. A body with a Content-Length (every fedtrack client
  // sends one) is read as it streams: the message head first, then a fit
  // result's model straight from the socket into tensors, each tensor
  // checked against the global model as it lands (parameter_stream.h), so
  // the server holds one decoded copy of an upload and no body copy, and a
  // bad upload is refused at its first bad tensor. In a round that folds
  // updates (ordered_fold.h) the read waits for the site's turn first.
  void result(const std::string& name, HTTPServerRequest& req, HTTPServerResponse& resp) {
    SitePresence presence(e_.registry, name);
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    const auto declared = req.getContentLength64();
    if (!impl || declared < 0) return buffered_result(name, req, resp);
    const std::uint64_t body_bytes = static_cast<std::uint64_t>(declared);
    check_declared_size(declared, resp);
    if (auto gate = e_.registry.upload_gate(name, session_of(req))) gate();
    const auto reading = std::chrono::steady_clock::now();

    Poco::Net::HTTPSession& session = impl->session();
    std::uint64_t consumed = 0;
    const ByteSource source = [&](char* buffer, std::size_t size) {
      const std::size_t n = read_some(session, buffer, std::min<std::uint64_t>(size, body_bytes - consumed));
      consumed += n;
      return n;
    };
    // On a refusal the rest of the declared body (at most server.max_message_mb,
    // checked above) is read and dropped, so a client still sending gets the
    // answer instead of a reset connection.
    struct DrainOnRefusal {
      const ByteSource& source;
      const std::uint64_t& consumed;
      std::uint64_t total;
      int exceptions = std::uncaught_exceptions();
      ~DrainOnRefusal() {
        if (std::uncaught_exceptions() <= exceptions) return;
        try {
          char sink[1 << 16];
          while (consumed < total && source(sink, sizeof sink) > 0) {
          }
        } catch (...) {  // a broken connection: nothing more to say
        }
      }
    } drain{source, consumed, body_bytes};
    auto read_exactly = [&](char* buffer, std::size_t size) {
      for (std::size_t got = 0; got < size;) {
        const std::size_t n = source(buffer + got, size - got);
        if (n == 0) {
          throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, "body ended after " + std::to_string(consumed) + " of " +
                                                            std::to_string(body_bytes) + " bytes"};
        }
        got += n;
      }
    };
    auto bad_request = [](const std::string& why) { return Refusal{HTTPResponse::HTTP_BAD_REQUEST, why}; };

    // --- the message head ---
    if (body_bytes < kMessagePrefixBytes) {
      throw bad_request("a body of " + std::to_string(body_bytes) + " bytes is shorter than a message head");
    }
    std::string head(kMessagePrefixBytes, '\0');
    read_exactly(head.data(), head.size());
    Result message;
    std::uint64_t payload_size = 0;
    try {
      const std::uint64_t head_size = message_head_size(head);
      if (head_size > body_bytes) {
        throw Error::corruption("message: its head of " + std::to_string(head_size) + " bytes is longer than the body (" +
                                std::to_string(body_bytes) + ")");
      }
      head.resize(static_cast<std::size_t>(head_size));
      read_exactly(head.data() + kMessagePrefixBytes, head.size() - kMessagePrefixBytes);
      message = decode_result_head(head, payload_size);
      if (payload_size != body_bytes - head_size) {
        throw Error::corruption("message: its payload length says " + std::to_string(payload_size) +
                                " bytes, the body holds " + std::to_string(body_bytes - head_size));
      }
    } catch (const Error& ex) {
      throw bad_request(ex.what());
    }
    std::string().swap(head);
    const auto task = open_result_task(name, req, message);

    // --- the model, checked while it streams ---
    std::shared_ptr<Parameters> parameters;
    std::string rejection;
    if (message.kind == MessageKind::kEvaluateResult) rejection = evaluate_problem(message);
    if (message.kind == MessageKind::kSecAggResult) {
      // A SecAgg+ stage reply: its bytes (bounded by server.max_message_mb)
      // go to the round's SecAggServer, which checks their content.
      message.payload.resize(static_cast<std::size_t>(payload_size));
      read_exactly(message.payload.data(), message.payload.size());
      rejection = stage_reply_problem(message, *task);
    } else if (holds_no_model(message)) {
      // SecAgg+: the fit result holds no model (refused unread when it has one).
      rejection = held_update_problem(message, payload_size);
      if (rejection.empty()) parameters = std::make_shared<Parameters>(*task->global);
    } else if (message.kind == MessageKind::kFitResult) {
      if (message.num_examples <= 0) {
        rejection = "num_examples must be > 0";  // refused before its model is read
      } else {
        try {
          if (message.encoding == kCompressedUpdateEncoding) {
            // A compressed update (docs/compression.md) is a fraction of the
            // model's size: read whole (bounded by server.max_message_mb),
            // then decoded and checked against the global model.
            std::string payload(static_cast<std::size_t>(payload_size), '\0');
            read_exactly(payload.data(), payload.size());
            parameters = std::make_shared<Parameters>(compression::apply_update(payload, *task->global));
          } else {
            std::unique_ptr<Parameters> into = e_.uploads->take(*task->global);
            StreamedUpdate update =
                read_update(source, payload_size, into ? *into : *task->global, "update", into.get());
            if (update.rejection.empty()) {
              parameters = std::make_shared<Parameters>(std::move(update.parameters));
            } else {
              rejection = std::move(update.rejection);
            }
          }
        } catch (const Error& ex) {
          throw bad_request(ex.what());
        }
      }
    } else {
      char sink[1 << 16];  // a payload only a fit result uses (decode_result ignores it too)
      while (consumed < body_bytes) read_exactly(sink, static_cast<std::size_t>(std::min<std::uint64_t>(sizeof sink, body_bytes - consumed)));
    }
    const double upload_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - reading).count();
    e_.registry.deliver(name, *task, std::move(message), std::move(parameters), body_bytes, edge_text(rejection),
                        upload_seconds);
    if (!rejection.empty()) throw Refusal{HTTPResponse::HTTP_UNPROCESSABLE_ENTITY, rejection};  // unread bytes: the refusal closes
    send_no_content(resp);
  }

  // A result without a Content-Length: read whole, then decoded.
  void buffered_result(const std::string& name, HTTPServerRequest& req, HTTPServerResponse& resp) {
    std::string body = read_body(req, resp);
    const std::size_t body_bytes = body.size();
    Result message;
    try {
      message = decode_result(std::move(body));  // the payload stays in the body's buffer
    } catch (const Error& ex) {
      throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, ex.what()};
    }
    const auto task = open_result_task(name, req, message);
    // Checks against the task (outside the registry's lock: decoding a model takes time).
    std::shared_ptr<Parameters> parameters;
    std::string rejection;
    if (message.kind == MessageKind::kEvaluateResult) rejection = evaluate_problem(message);
    if (message.kind == MessageKind::kSecAggResult) {
      rejection = stage_reply_problem(message, *task);
    } else if (holds_no_model(message)) {
      rejection = held_update_problem(message, message.payload.size());
      if (rejection.empty()) parameters = std::make_shared<Parameters>(*task->global);
    } else if (message.kind == MessageKind::kFitResult) {
      try {
        parameters = std::make_shared<Parameters>(
            message.encoding == kCompressedUpdateEncoding ? compression::apply_update(message.payload, *task->global)
                                                          : decode_parameters(message.payload));
      } catch (const Error& ex) {
        throw Refusal{HTTPResponse::HTTP_BAD_REQUEST, ex.what()};
      }
      try {
        check_update(*task->global, *parameters, "update");
        if (message.num_examples <= 0) throw Error::invalid_argument("num_examples must be > 0");
      } catch (const Error& ex) {
        rejection = ex.what();
      }
    }
    if (message.kind != MessageKind::kSecAggResult) {
      std::string().swap(message.payload);  // decoded: its capacity must not wait in the task's result
    }
    e_.registry.deliver(name, *task, std::move(message), std::move(parameters), body_bytes, edge_text(rejection));
    if (!rejection.empty()) throw Refusal{HTTPResponse::HTTP_UNPROCESSABLE_ENTITY, rejection};
    send_no_content(resp);
  }

  // The task a result answers; 409 for another job's result.
  std::shared_ptr<SiteTask> open_result_task(const std::string& name, HTTPServerRequest& req, const Result& message) {
    if (message.job_id != e_.job.job_id) {
      throw Refusal{HTTPResponse::HTTP_CONFLICT,
                    "result for job '" + message.job_id + "', this server runs " + e_.job.job_id};
    }
    return e_.registry.open_task(name, session_of(req), message.task_id, message.round, message.kind);
  }
  // What is wrong with an evaluate result's figures, or "".
  static std::string evaluate_problem(const Result& message) {
    if (!std::isfinite(message.loss)) return "loss is not finite";
    if (message.num_examples < 0) return "num_examples must be >= 0";
    return "";
  }
  // A fit result under SecAgg+ (or claiming to be one): no model travels.
  bool holds_no_model(const Result& message) const {
    return message.kind == MessageKind::kFitResult &&
           (e_.job.secure_aggregation || message.encoding == kSecAggHeldEncoding);
  }

  // SecAgg+ (net/secagg_stage.h): a fit result holds no model, and only then
  // (the round loop's update checks see the global model in its place; the
  // secure mean replaces it). What is wrong with `message`, or "".
  std::string held_update_problem(const Result& message, std::uint64_t payload_bytes) {
    if (!e_.job.secure_aggregation) {
      return std::string("encoding '") + kSecAggHeldEncoding + "': secure aggregation is off in this job";
    }
    if (message.encoding != kSecAggHeldEncoding || payload_bytes != 0) {
      return std::string("secure_aggregation.mode is on: a fit result must carry no model (encoding '") +
             kSecAggHeldEncoding + "', empty payload)";
    }
    if (message.num_examples <= 0) return "num_examples must be > 0";
    return "";
  }
  // The envelope of a stage reply: the stage the task asked for. Its content
  // is checked by the round's SecAggServer (a bad one drops the client).
  static std::string stage_reply_problem(const Result& message, const SiteTask& task) {
    if (message.stage != task.secagg_stage) {
      return "a reply for secure aggregation stage " + std::to_string(message.stage) + ", the task asked for stage " +
             std::to_string(task.secagg_stage);
    }
    try {
      const auto stage = secagg::stage_of(message.payload, "secure aggregation reply");
      if (static_cast<std::int64_t>(stage) != task.secagg_stage) {
        return "the reply's bytes are for stage " + std::to_string(static_cast<int>(stage)) +
               ", the task asked for stage " + std::to_string(task.secagg_stage);
      }
    } catch (const Error& ex) {
      return ex.what();
    }
    return "";
  }

  const Endpoints& e_;
};

}  // namespace

Poco::Net::HTTPRequestHandler* EndpointFactory::createRequestHandler(const Poco::Net::HTTPServerRequest&) {
  return new Handler(endpoints_);
}

}  // namespace fedtrack::net
