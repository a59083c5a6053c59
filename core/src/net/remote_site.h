// The server's handle on one remote site: a ClientProxy whose fit() and
// evaluate() post a task through the SiteRegistry and wait for its result,
// the round's deadline or the site's silence (LibTorch: it carries models).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "fedtrack/core/client_proxy.h"
#include "compression/update_codec.h"
#include "fedtrack/core/parameters.h"
#include "net/site_registry.h"

namespace fedtrack::net {

// The global model's encoding, made once per model and shared by all its
// tasks (every site gets the same buffer, never re-encoded per client): FTPM,
// or with downlink compression the job's codec (docs/compression.md). It
// lives as long as a task holds it: once a phase's tasks have ended it goes
// back to the system instead of sitting beside the aggregation.
class ModelPayloads {
 public:
  // `compression`: the job's plan when compression is on (else null).
  explicit ModelPayloads(std::shared_ptr<const compression::Plan> compression = nullptr)
      : compression_(std::move(compression)) {}
  std::shared_ptr<const std::string> payload_for(const std::shared_ptr<const Parameters>& global, int round);
  // The task header's "encoding" of these payloads ("" = FTPM).
  std::string encoding() const;
  const compression::Plan* compression() const { return compression_.get(); }

 private:
  std::shared_ptr<const compression::Plan> compression_;
  std::mutex mutex_;
  std::weak_ptr<const Parameters> global_;
  std::weak_ptr<const std::string> payload_;
};

struct RemoteJob {
  std::string job_id;
  std::function<bool()> stop_requested;  // SIGINT / SIGTERM
};

class RemoteSite : public ClientProxy {
 public:
  RemoteSite(std::string name, SiteRegistry& registry, ModelPayloads& payloads, const RemoteJob& job)
      : ClientProxy(std::move(name)), registry_(registry), payloads_(payloads), job_(job) {}
  FitRes fit(const FitIns& ins, TransferStats& transfer) override;
  EvaluateRes evaluate(const EvaluateIns& ins, TransferStats& transfer) override;
  // One SecAgg+ stage on this site (net/secagg_stage.h): posts `request` as
  // a kSecAggTask and returns the site's reply bytes; `bytes` adds what went
  // each way. Error(kUnavailable) naming why there is no reply.
  std::string run_stage(int round, int stage, std::string request, const Deadline& deadline, std::uint64_t& bytes);

 private:
  // Error(kUnavailable) naming why the task failed.
  Result run_task(MessageKind kind, const ConfigRecord& config, const std::shared_ptr<const Parameters>& global,
                  const Deadline& deadline, TransferStats& transfer, std::shared_ptr<Parameters>* parameters,
                  std::function<void()> before_upload = {});
  SiteRegistry& registry_;
  ModelPayloads& payloads_;
  const RemoteJob& job_;
};

}  // namespace fedtrack::net
