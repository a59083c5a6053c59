#include "net/connection.h"

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>

#include <algorithm>
#include <chrono>

#include "fedtrack/core/error.h"
#include "net/protocol.h"
#include "net/session_io.h"

namespace fedtrack::net {

Reply Connection::send(const std::string& method, const std::string& path, const std::string& session,
                       std::string_view body, double timeout_seconds, std::string_view tail) {
  try {
    return send_once(method, path, session, body, tail, timeout_seconds, nullptr);
  } catch (...) {
    session_.reset();  // start over with a fresh connection next time
    throw;
  }
}

Reply Connection::send_streamed(const std::string& method, const std::string& path, const std::string& session,
                                std::string_view body, double timeout_seconds, const BodyReader& read) {
  try {
    return send_once(method, path, session, body, {}, timeout_seconds, &read);
  } catch (...) {
    session_.reset();
    throw;
  }
}

Reply Connection::send_once(const std::string& method, const std::string& path, const std::string& session,
                            std::string_view body, std::string_view tail, double timeout_seconds,
                            const BodyReader* read) {
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
  req.set(kAuthorizationHeader, bearer(token_));
  if (!session.empty()) req.set(kSessionHeader, session);
  req.set(kInstanceHeader, instance_);  // this process: the server refuses a second one with the same token
  req.setKeepAlive(true);
  if (method == Poco::Net::HTTPRequest::HTTP_POST) {
    req.setContentType(kMessageContentType);
    req.setContentLength64(static_cast<Poco::UInt64>(body.size() + tail.size()));
  }
  session_->sendRequest(req).flush();  // the head; the body goes straight to the socket
  write_all(*session_, body);
  write_all(*session_, tail);
  Poco::Net::HTTPResponse resp;
  std::istream& in = session_->receiveResponse(resp);
  Reply reply;
  reply.status = resp.getStatus();
  const auto declared = resp.getContentLength64();
  if (declared >= 0 && static_cast<std::uint64_t>(declared) > max_bytes_) {
    throw Error::invalid_argument("the server sent a message of " + std::to_string(declared) +
                                  " bytes, over --max-message-mb");
  }
  if (read && reply.status == Poco::Net::HTTPResponse::HTTP_OK && declared >= 0) {
    const auto size = static_cast<std::uint64_t>(declared);
    std::uint64_t consumed = 0;
    const ByteSource source = [&](char* buffer, std::size_t n) {
      const std::size_t got = read_some(*session_, buffer, static_cast<std::size_t>(std::min<std::uint64_t>(n, size - consumed)));
      consumed += got;
      return got;
    };
    (*read)(size, source);
    if (consumed != size) session_.reset();
    else if (!resp.getKeepAlive()) session_.reset();
    return reply;
  }
  if (declared >= 0) {
    // Read straight into the body, in large socket reads.
    reply.body.resize(static_cast<std::size_t>(declared));
    const std::size_t got = read_fully(*session_, reply.body.data(), reply.body.size());
    if (got != reply.body.size()) {
      throw Poco::Exception("the connection broke after " + std::to_string(got) + " of " + std::to_string(declared) +
                            " bytes");
    }
  } else {  // no Content-Length (chunked or until close): Poco's stream decodes it
    char buf[1 << 16];
    while (in) {
      in.read(buf, sizeof buf);
      reply.body.append(buf, static_cast<std::size_t>(in.gcount()));
      if (reply.body.size() > max_bytes_) throw Error::invalid_argument("the server sent a message over --max-message-mb");
    }
  }
  if (!resp.getKeepAlive()) session_.reset();
  return reply;
}

Heartbeat::Heartbeat(Connection connection, std::string session, double every)
    : connection_(std::move(connection)), session_(std::move(session)), every_(every), thread_([this] { loop(); }) {}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Heartbeat::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::duration<double>(every_), [this] { return stop_; })) {
    lock.unlock();
    try {
      connection_.send(Poco::Net::HTTPRequest::HTTP_POST, kHeartbeatPath, session_, "", 10);
    } catch (...) {
      // the main loop notices a lost server when it posts the result
    }
    lock.lock();
  }
}

std::string reply_text(const std::string& body) {
  std::string s = body.substr(0, 500);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace fedtrack::net
