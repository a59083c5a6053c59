// Private to core: the simulation's compression — a ClientProxy that wraps
// another and puts the job's codecs between it and the server
// (compression/update_codec.h): the client trains from the decoded
// broadcast, its update goes through encode -> decode (with this virtual
// client's error-feedback residual), and the server receives global + the
// decoded update. bytes_down / bytes_up become the encoded sizes, and
// raw_bytes_* what they would have been uncompressed. Like every proxy, not
// called concurrently on itself; the residual lives as long as the proxy
// (the job: a resumed job starts from zero residuals).
#pragma once

#include <memory>

#include "compression/update_codec.h"
#include "fedtrack/core/client_proxy.h"

namespace fedtrack::compression {

class CompressedClientProxy : public ClientProxy {
 public:
  CompressedClientProxy(std::shared_ptr<ClientProxy> inner, std::shared_ptr<const Plan> plan);

  FitRes fit(const FitIns& ins, TransferStats& transfer) override;
  EvaluateRes evaluate(const EvaluateIns& ins, TransferStats& transfer) override;
  std::int64_t expected_work() const override { return inner_->expected_work(); }

 private:
  // The model the client gets: the decoded broadcast, or the global model itself.
  std::shared_ptr<const Parameters> received(const std::shared_ptr<const Parameters>& global, std::int64_t round,
                                             TransferStats& transfer) const;

  std::shared_ptr<ClientProxy> inner_;
  std::shared_ptr<const Plan> plan_;
  Residual residual_;
};

}  // namespace fedtrack::compression
