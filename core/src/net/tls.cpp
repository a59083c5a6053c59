#include "net/tls.h"

#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack::net {

Poco::Net::Context::Ptr server_tls_context(const std::string& cert, const std::string& key) {
  if (cert.empty() != key.empty()) throw Error::invalid_argument("--tls-cert and --tls-key go together");
  check_regular_file(cert);  // OpenSSL would block on a FIFO
  check_regular_file(key);
  Poco::Net::initializeSSL();
  try {
    Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, key, cert, "",
                                                             Poco::Net::Context::VERIFY_NONE);
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    return context;
  } catch (const Poco::Exception& e) {
    throw Error::invalid_argument("--tls-cert/--tls-key: " + e.displayText());
  }
}

Poco::Net::Context::Ptr client_tls_context(const std::string& ca) {
  if (!ca.empty()) check_regular_file(ca);  // OpenSSL would block on a FIFO
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", ca,
                                                           Poco::Net::Context::VERIFY_RELAXED, 9, ca.empty());
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  Poco::Net::SSLManager::InvalidCertificateHandlerPtr reject(new Poco::Net::RejectCertificateHandler(false));
  Poco::Net::SSLManager::instance().initializeClient(nullptr, reject, context);
  return context;
}

}  // namespace fedtrack::net
