// The client's side of the wire: one keep-alive HTTP(S) connection to the
// server that sends the protocol's headers (bearer token, session, client
// instance) and reads a bounded reply, and a heartbeat thread on a
// connection of its own.
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/URI.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "byte_codec.h"

namespace fedtrack::net {

struct Reply {
  int status = 0;
  std::string body;
};

// Reconnects after a failure.
class Connection {
 public:
  Connection(Poco::URI uri, Poco::Net::Context::Ptr context, std::string token, std::string instance,
             std::uint64_t max_bytes)
      : uri_(std::move(uri)), context_(std::move(context)), token_(std::move(token)), instance_(std::move(instance)),
        max_bytes_(max_bytes) {}

  // Throws Poco::Exception when the server cannot be reached or the
  // connection breaks, Error(kInvalidArgument) for a reply over max_bytes;
  // any HTTP status is a Reply. An empty `session` is not sent.
  // The body is `body` followed by `tail` (a message head and the model
  // after it, without joining them); both go to the socket in large writes
  // and the reply is read the same way (net/session_io.h).
  Reply send(const std::string& method, const std::string& path, const std::string& session,
             std::string_view body, double timeout_seconds, std::string_view tail = {});

  // The same, but a 200 reply with a Content-Length is handed to `read`
  // as it arrives (`source` yields at most `size` bytes) instead of being
  // collected in Reply::body. If `read` stops early or throws, the
  // connection is dropped (its unread rest cannot be the next reply).
  using BodyReader = std::function<void(std::uint64_t size, const ByteSource& source)>;
  Reply send_streamed(const std::string& method, const std::string& path, const std::string& session,
                      std::string_view body, double timeout_seconds, const BodyReader& read);

 private:
  Reply send_once(const std::string& method, const std::string& path, const std::string& session,
                  std::string_view body, std::string_view tail, double timeout_seconds, const BodyReader* read);

  Poco::URI uri_;
  Poco::Net::Context::Ptr context_;
  std::string token_;
  std::string instance_;
  std::uint64_t max_bytes_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
};

// Posts heartbeats every `every` seconds while it lives.
class Heartbeat {
 public:
  Heartbeat(Connection connection, std::string session, double every);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  void loop();
  Connection connection_;
  std::string session_;
  double every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// A reply body for a log line: at most 500 bytes, without its line end.
std::string reply_text(const std::string& body);

}  // namespace fedtrack::net
