// The server's HTTP endpoints (Poco request handlers): authenticate the
// bearer token, read a bounded body, decode it with protocol.h and act on
// the SiteRegistry. Refused input gets a 4xx with the reason as text and one
// log line naming the client, and changes nothing; any other exception is a
// 500 "internal error" (its first line goes to the log, never to the client).
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include <cstdint>
#include <functional>
#include <string>

#include "net/protocol.h"
#include "net/site_registry.h"
#include "net/tokens.h"
#include "net/upload_spare.h"

namespace fedtrack::net {

struct Endpoints {
  SiteRegistry& registry;
  const TokenTable& tokens;
  Joined job;                          // a join's answer but its per-site fields
  std::int64_t max_message_mb = 1024;  // bodies over it get 413
  std::uint64_t job_seed = 0;          // a site's data_seed derives from it and its name
  std::function<void(const std::string&)> log;  // thread-safe
  std::shared_ptr<UploadSpare> uploads = std::make_shared<UploadSpare>();  // fit results are read into it
};

class EndpointFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit EndpointFactory(const Endpoints& endpoints) : endpoints_(endpoints) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override;
  // Shuts down the socket of every connection being served (what
  // HTTPServer::stopAll(true) does), so the worker threads return.
  void abort_connections() { serverStopped(this, true); }

 private:
  const Endpoints& endpoints_;
};

}  // namespace fedtrack::net
