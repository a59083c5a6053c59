#include "net/session_io.h"

#include <Poco/Net/NetException.h>

#include <algorithm>

namespace fedtrack::net {
namespace {

// HTTPSession::read / write are protected; a pointer to member taken
// through a derived class reaches them on any session (virtual dispatch kept).
struct SessionAccess : Poco::Net::HTTPSession {
  using ReadFn = int (Poco::Net::HTTPSession::*)(char*, std::streamsize);
  using WriteFn = int (Poco::Net::HTTPSession::*)(const char*, std::streamsize);
  static ReadFn read_fn() { return &SessionAccess::read; }
  static WriteFn write_fn() { return &SessionAccess::write; }
};

int session_read(Poco::Net::HTTPSession& s, char* buffer, std::streamsize n) { return (s.*SessionAccess::read_fn())(buffer, n); }
int session_write(Poco::Net::HTTPSession& s, const char* buffer, std::streamsize n) {
  return (s.*SessionAccess::write_fn())(buffer, n);
}

}  // namespace

std::size_t read_some(Poco::Net::HTTPSession& session, char* buffer, std::size_t size) {
  const int n = session_read(session, buffer, static_cast<std::streamsize>(std::min(size, kSocketChunkBytes)));
  if (n < 0) throw Poco::IOException("socket read failed");
  return static_cast<std::size_t>(n);
}

std::size_t read_fully(Poco::Net::HTTPSession& session, char* buffer, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const std::size_t n = read_some(session, buffer + got, size - got);
    if (n == 0) break;
    got += n;
  }
  return got;
}

void write_all(Poco::Net::HTTPSession& session, std::string_view bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const int n = session_write(session, bytes.data() + sent,
                                       static_cast<std::streamsize>(std::min(bytes.size() - sent, kSocketChunkBytes)));
    if (n <= 0) throw Poco::IOException("connection closed while sending");
    sent += static_cast<std::size_t>(n);
  }
}

}  // namespace fedtrack::net
