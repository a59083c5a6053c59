// The front door of `fedtrack server`: one thread accepts every TCP
// connection and holds it, without a worker thread, in a poll() set until it
// has shown that it is worth one. Only then is it handed to Poco's HTTP side
// (a TCPServerDispatcher and its worker pool), so connections that send
// nothing, or trickle a request head, cannot take the workers the sites need.
//
// Plain http: the gate peeks (MSG_PEEK, nothing is consumed) until the whole
// request head has arrived. A head without a known bearer token is answered
// 401 by the gate itself; so only authenticated requests reach the workers.
// https: the head is encrypted; the gate waits (peeking at the plain TCP
// bytes) for the client's first TLS record — the ClientHello — to be
// complete, then the worker does the handshake under the HTTP server's
// per-read timeout. Anything that is not a TLS handshake record is closed.
//
// Bounds (GateLimits): a connection must complete its head within
// `head_seconds` of being accepted — in total, however it trickles — or it is
// closed (408); at most `max_pending` connections wait at once and at most
// `max_pending_per_address` from one IP address: a new connection past a cap
// closes the oldest waiting one (of that address, or overall). A site's own
// request head arrives in one packet, so a site is never the oldest waiter
// for long. Refusals and closes are logged as a summary at most every 10 s.
//
// Thread-safety: start() and stop() from one thread; the authorize callback
// is called on the gate thread.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServerDispatcher.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace fedtrack {

struct GateLimits {
  double head_seconds = 5;                    // accept -> complete request head (https: ClientHello), total
  std::size_t max_pending = 512;              // connections waiting for their head
  std::size_t max_pending_per_address = 128;  // of those, from one IP address
  std::size_t max_head_bytes = 16 << 10;      // a longer head gets 431
};

// What the gate did so far (for logs and tests).
struct GateCounts {
  std::uint64_t accepted = 0;
  std::uint64_t handed_over = 0;
  std::uint64_t timed_out = 0;    // no complete head within head_seconds
  std::uint64_t evicted = 0;      // closed for a newer connection past a cap
  std::uint64_t unauthorized = 0; // 401 from the gate
  std::uint64_t malformed = 0;    // 400 / 431 from the gate
};

class ConnectionGate {
 public:
  // `authorize(token)` says whether a bearer token is known. `dispatcher` is
  // not owned and must outlive stop().
  ConnectionGate(Poco::Net::ServerSocket& socket, bool tls, GateLimits limits, Poco::Net::TCPServerDispatcher& dispatcher,
                 std::function<bool(const std::string& token)> authorize,
                 std::function<void(const std::string& line)> log);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  void start();
  void stop();  // closes every waiting connection; idempotent

 private:
  void run();

  Poco::Net::ServerSocket& socket_;
  const bool tls_;
  const GateLimits limits_;
  Poco::Net::TCPServerDispatcher& dispatcher_;
  std::function<bool(const std::string&)> authorize_;
  std::function<void(const std::string&)> log_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Raises this process's open-file limit to its hard limit (a flood of
// connections needs one descriptor each); returns the new soft limit.
std::uint64_t raise_open_file_limit();

}  // namespace fedtrack
