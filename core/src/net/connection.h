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
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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
  Reply send(const std::string& method, const std::string& path, const std::string& session,
             const std::string& body, double timeout_seconds);

 private:
  Reply send_once(const std::string& method, const std::string& path, const std::string& session,
                  const std::string& body, double timeout_seconds);

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
