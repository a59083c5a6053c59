// Large reads and writes on a Poco HTTP session, around Poco's body
// streams: those cut a body into 4 KB socket calls (HTTPBufferAllocator),
// which caps a model transfer at a fraction of what the socket can do.
// These go through HTTPSession's own read() / write(): bytes the session
// has already buffered (read ahead with the request or response head) come
// first, then the socket is read or written directly, TLS included.
//
// Use them instead of the body stream, never after reading from it (its
// own buffer would hold bytes these never see). Not thread-safe: one
// request / response on one session at a time, as Poco's streams.
#pragma once

#include <Poco/Net/HTTPSession.h>

#include <cstdint>
#include <string_view>

namespace fedtrack::net {

// Reads up to `size` bytes into `buffer`; 0 at the end of the connection.
// Throws Poco::Exception on a socket error or timeout.
std::size_t read_some(Poco::Net::HTTPSession& session, char* buffer, std::size_t size);

// Reads exactly `size` bytes; returns fewer only when the connection ends first.
std::size_t read_fully(Poco::Net::HTTPSession& session, char* buffer, std::size_t size);

// Writes every byte of `bytes` (Poco::IOException when the peer goes away).
void write_all(Poco::Net::HTTPSession& session, std::string_view bytes);

// How much one socket call moves at most.
inline constexpr std::size_t kSocketChunkBytes = 4u << 20;

}  // namespace fedtrack::net
