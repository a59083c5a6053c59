#include "net/network_gate.h"

#include <Poco/Net/StreamSocket.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <list>
#include <map>
#include <vector>

#include "fedtrack/core/text.h"
#include "net/protocol.h"

namespace fedtrack {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kClosingSeconds = 2;        // a refused connection may read our answer this long
constexpr std::size_t kMaxClosing = 256;     // refused connections lingering at once
constexpr double kSummarySeconds = 10;       // at most one summary line this often
constexpr int kDetailedRefusalsPerWindow = 5;  // "refused ... unknown token" lines per summary window

struct Waiting {
  Poco::Net::StreamSocket socket;
  int fd = -1;
  std::string address;  // IP address: the per-address cap's key
  std::string peer;     // address:port, for logs
  Clock::time_point accepted;
};

struct Closing {
  Poco::Net::StreamSocket socket;
  int fd = -1;
  Clock::time_point until;
};

// Untrusted text for a log line: no control characters, valid UTF-8, short.
std::string loggable(std::string_view text) {
  std::string out(text.substr(0, 400));
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return truncate_utf8(to_valid_utf8(out), 200);
}

void hard_close(Poco::Net::StreamSocket& socket, int fd) {
  ::shutdown(fd, SHUT_RDWR);  // later I/O (a TLS close_notify) fails at once instead of waiting
  try {
    socket.close();
  } catch (...) {
  }
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

struct Head {
  std::string method, target;
  bool well_formed = false;
  bool has_authorization = false;
  std::string token;  // after "Bearer "
};

Head parse_head(std::string_view head) {
  Head h;
  const auto eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, eol);
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return h;
  h.method = std::string(request_line.substr(0, sp1));
  h.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  h.well_formed = request_line.substr(sp2 + 1).rfind("HTTP/1.", 0) == 0 && !h.method.empty();
  std::size_t at = eol + 2;
  while (at < head.size()) {
    auto end = head.find("\r\n", at);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(at, end - at);
    at = end + 2;
    if (!iequals_prefix(line, "authorization:")) continue;
    std::string_view value = line.substr(14);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    const auto token = net::bearer_token(value);
    h.has_authorization = token.has_value();
    if (token) h.token = *token;
  }
  return h;
}

}  // namespace

std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

ConnectionGate::ConnectionGate(Poco::Net::ServerSocket& socket, bool tls, GateLimits limits,
                               Poco::Net::TCPServerDispatcher& dispatcher,
                               std::function<bool(const std::string&)> authorize,
                               std::function<void(const std::string&)> log)
    : socket_(socket), tls_(tls), limits_(limits), dispatcher_(dispatcher), authorize_(std::move(authorize)),
      log_(std::move(log)) {}

ConnectionGate::~ConnectionGate() { stop(); }

void ConnectionGate::start() {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("connection gate: pipe failed");
  socket_.setBlocking(false);
  thread_ = std::thread([this] { run(); });
}

void ConnectionGate::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const char byte = 1;
  (void)!::write(wake_[1], &byte, 1);
  thread_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void ConnectionGate::run() {
  std::list<Waiting> waiting;  // oldest first
  std::map<std::string, std::size_t> per_address;
  std::list<Closing> closing;
  GateCounts counts, reported;
  auto window_start = Clock::now();
  int detailed_refusals = 0;
  constexpr std::size_t kMaxTlsRecord = 5 + 16384;  // record header + the largest plaintext fragment
  const std::size_t peek_bytes = tls_ ? kMaxTlsRecord : limits_.max_head_bytes;
  std::vector<char> buffer(std::max(peek_bytes, limits_.max_head_bytes));
  const auto head_time = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits_.head_seconds));

  auto forget = [&](std::list<Waiting>::iterator it) {
    if (--per_address[it->address] == 0) per_address.erase(it->address);
    waiting.erase(it);
  };
  auto drop = [&](std::list<Waiting>::iterator it) {
    hard_close(it->socket, it->fd);
    forget(it);
  };
  // Answers from the gate itself; the head is consumed so the close does not
  // turn into a reset that loses the answer, and the connection lingers
  // briefly so the client can read it.
  auto refuse = [&](std::list<Waiting>::iterator it, int status, const char* phrase, const std::string& reason,
                    std::size_t head_bytes, const Head& head) {
    if (detailed_refusals++ < kDetailedRefusalsPerWindow && log_) {
      log_("refused " + loggable(head.method) + " " + loggable(head.target) + " from " + it->peer + ": " + reason);
    }
    (void)::recv(it->fd, buffer.data(), head_bytes, MSG_DONTWAIT);
    const std::string body = reason + "\n";
    const std::string reply = "HTTP/1.1 " + std::to_string(status) + " " + phrase +
                              "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)::send(it->fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(it->fd, SHUT_WR);
    if (closing.size() >= kMaxClosing) {
      hard_close(closing.front().socket, closing.front().fd);
      closing.pop_front();
    }
    closing.push_back({it->socket, it->fd, Clock::now() + std::chrono::seconds(static_cast<int>(kClosingSeconds))});
    forget(it);
  };
  auto hand_over = [&](std::list<Waiting>::iterator it) {
    const int one = 1;
    ::setsockopt(it->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    try {
      dispatcher_.enqueue(it->socket);  // the dispatcher closes it when its queue is full
      ++counts.handed_over;
    } catch (...) {
      hard_close(it->socket, it->fd);
    }
    forget(it);
  };
  // Plain http: is the request head complete, and does it carry a known token?
  // Returns whether the connection still waits (its head is incomplete).
  auto examine = [&](std::list<Waiting>::iterator it) -> bool {
    const ssize_t n = ::recv(it->fd, buffer.data(), peek_bytes, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return drop(it), false;  // closed by the peer
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      return drop(it), false;
    }
    // Wake up only when more bytes arrive (poll honours SO_RCVLOWAT for TCP).
    auto wait_for_bytes = [&](std::size_t total) {
      const int at_least = static_cast<int>(total);
      ::setsockopt(it->fd, SOL_SOCKET, SO_RCVLOWAT, &at_least, sizeof at_least);
      return true;
    };
    if (tls_) {
      // The first TLS record (the ClientHello, in the clear) must be complete;
      // then the worker does the handshake.
      const auto* b = reinterpret_cast<const unsigned char*>(buffer.data());
      if (b[0] != 0x16) {  // not a TLS handshake record
        ++counts.malformed;
        return drop(it), false;
      }
      if (n < 5) return wait_for_bytes(5);
      const std::size_t record = 5 + ((static_cast<std::size_t>(b[3]) << 8) | b[4]);
      if (record > kMaxTlsRecord) {
        ++counts.malformed;
        return drop(it), false;
      }
      if (static_cast<std::size_t>(n) < record) return wait_for_bytes(record);
      return hand_over(it), false;
    }
    const std::string_view seen(buffer.data(), static_cast<std::size_t>(n));
    const auto end = seen.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (static_cast<std::size_t>(n) >= peek_bytes) {
        ++counts.malformed;
        return refuse(it, 431, "Request Header Fields Too Large",
                      "request head over " + std::to_string(peek_bytes) + " bytes", static_cast<std::size_t>(n),
                      parse_head(seen)), false;
      }
      return wait_for_bytes(static_cast<std::size_t>(n) + 1);
    }
    const std::size_t head_bytes = end + 4;
    const Head head = parse_head(seen.substr(0, head_bytes));
    if (!head.well_formed) {
      ++counts.malformed;
      return refuse(it, 400, "Bad Request", "not an HTTP/1.x request", head_bytes, head), false;
    }
    if (!head.has_authorization) {
      ++counts.unauthorized;
      return refuse(it, 401, "Unauthorized", "no bearer token (Authorization: Bearer TOKEN)", head_bytes, head), false;
    }
    if (!authorize_(head.token)) {
      ++counts.unauthorized;
      return refuse(it, 401, "Unauthorized", "unknown token", head_bytes, head), false;
    }
    return hand_over(it), false;
  };
  auto evict_oldest = [&](const std::string* address) {
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      if (!address || it->address == *address) {
        ++counts.evicted;
        drop(it);
        return true;
      }
    }
    return false;
  };
  auto accept_all = [&] {
    // A small batch: each waiting connection is examined before more than a
    // per-address cap of newer ones can push it out.
    for (int i = 0; i < 64; ++i) {
      Poco::Net::SocketAddress peer;
      Poco::Net::StreamSocket s;
      try {
        s = socket_.acceptConnection(peer);
      } catch (const Poco::Exception&) {
        if (errno == EMFILE || errno == ENFILE) {  // out of descriptors: the oldest waiter gives its up
          if (!evict_oldest(nullptr)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return;
      }
      ++counts.accepted;
      Waiting w;
      w.socket = s;
      w.fd = static_cast<int>(s.impl()->sockfd());
      w.address = peer.host().toString();
      w.peer = peer.toString();
      w.accepted = Clock::now();
      if (per_address[w.address] >= limits_.max_pending_per_address) evict_oldest(&w.address);
      if (waiting.size() >= limits_.max_pending) evict_oldest(nullptr);
      ++per_address[w.address];
      waiting.push_back(std::move(w));
    }
  };
  auto summarize = [&](bool force) {
    const auto now = Clock::now();
    if (!force && std::chrono::duration<double>(now - window_start).count() < kSummarySeconds) return;
    const auto timed_out = counts.timed_out - reported.timed_out, evicted = counts.evicted - reported.evicted,
               unauthorized = counts.unauthorized - reported.unauthorized,
               malformed = counts.malformed - reported.malformed;
    if ((timed_out || evicted || unauthorized || malformed) && log_) {
      char line[512];
      std::snprintf(line, sizeof line,
                    "connection gate: closed %llu connections without a complete request head within %g s, %llu "
                    "for newer ones past a cap (%zu waiting, %zu per address); refused %llu without a known token, "
                    "%llu malformed; %zu waiting now",
                    static_cast<unsigned long long>(timed_out), limits_.head_seconds,
                    static_cast<unsigned long long>(evicted), limits_.max_pending, limits_.max_pending_per_address,
                    static_cast<unsigned long long>(unauthorized), static_cast<unsigned long long>(malformed),
                    waiting.size());
      log_(line);
    }
    reported = counts;
    window_start = now;
    detailed_refusals = 0;
  };

  std::vector<pollfd> fds;
  std::vector<std::list<Waiting>::iterator> polled;
  std::vector<std::list<Closing>::iterator> polled_closing;
  const int listen_fd = static_cast<int>(socket_.impl()->sockfd());
  while (!stop_) {
    fds.clear();
    polled.clear();
    polled_closing.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    auto next = Clock::now() + std::chrono::seconds(1);
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      fds.push_back({it->fd, POLLIN, 0});
      polled.push_back(it);
      next = std::min(next, it->accepted + head_time);
    }
    for (auto it = closing.begin(); it != closing.end(); ++it) {
      fds.push_back({it->fd, POLLIN, 0});
      polled_closing.push_back(it);
      next = std::min(next, it->until);
    }
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1;
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait_ms)));
    if (stop_) break;
    if (ready < 0 && errno != EINTR) break;
    const auto now = Clock::now();
    // Refused connections: read and discard until the peer closes or time is up.
    for (std::size_t i = 0; i < polled_closing.size(); ++i) {
      auto it = polled_closing[i];
      const auto& p = fds[2 + polled.size() + i];
      bool finished = now >= it->until;
      if (!finished && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        const ssize_t n = ::recv(it->fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        finished = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
      }
      if (finished) {
        hard_close(it->socket, it->fd);
        closing.erase(it);
      }
    }
    for (std::size_t i = 0; i < polled.size(); ++i) {
      auto it = polled[i];
      const auto& p = fds[2 + i];
      if (p.revents & (POLLERR | POLLNVAL)) {
        drop(it);
      } else if ((p.revents & (POLLIN | POLLHUP)) && !examine(it)) {
        // handed over, refused or closed
      } else if (now - it->accepted >= head_time) {
        ++counts.timed_out;
        drop(it);
      }
    }
    if (fds[0].revents & POLLIN) {
      char sink[16];
      while (::read(wake_[0], sink, sizeof sink) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) accept_all();
    summarize(false);
  }
  summarize(true);
  while (!waiting.empty()) drop(waiting.begin());
  for (auto& c : closing) hard_close(c.socket, c.fd);
}

}  // namespace fedtrack
