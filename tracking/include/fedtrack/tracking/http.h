// HTTP as the MLflow client needs it, behind an interface so tests can put a
// fault-injecting transport in its place (the leveldb Env idea).
//
// HttpTransport::send performs one request and returns whatever status the
// server answered; only a failure to get an answer at all (refused
// connection, DNS, TLS, timeout) is an exception: Error(kUnavailable).
// A transport is used by one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fedtrack {

struct HttpRequest {
  std::string method = "GET";   // GET, POST, PUT, PATCH, DELETE
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  double timeout_seconds = 120;  // whole request
  // False for a request that must not reach the server twice (a create):
  // it goes on a fresh connection, since libcurl silently resends a request
  // whose reused connection closed without an answer.
  bool idempotent = true;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

struct TlsOptions {
  bool insecure = false;   // skip certificate verification (MLFLOW_TRACKING_INSECURE_TLS)
  std::string ca_path;     // CA bundle to trust (MLFLOW_TRACKING_SERVER_CERT_PATH)
};

// libcurl, one connection reused across requests (keep-alive).
std::unique_ptr<HttpTransport> make_curl_transport(const TlsOptions& tls = {});

// Percent-encodes a query-string component.
std::string url_encode(const std::string& text);

}  // namespace fedtrack
