// TLS set-up for the network runtime (Poco NetSSL): the server's context
// from --tls-cert/--tls-key, the client's from --tls-ca. TLS 1.2 at least.
#pragma once

#include <Poco/Net/Context.h>

#include <string>

namespace fedtrack::net {

// Error(kInvalidArgument) naming the flags for unreadable or unusable files
// (a FIFO is refused before OpenSSL would block on it).
Poco::Net::Context::Ptr server_tls_context(const std::string& cert, const std::string& key);

// Verifies the server against `ca` (PEM bundle) or, when empty, the system's
// certificates; an invalid certificate is refused, never accepted.
Poco::Net::Context::Ptr client_tls_context(const std::string& ca);

}  // namespace fedtrack::net
