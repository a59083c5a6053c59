#include "compression/compressed_proxy.h"

#include "fedtrack/core/records.h"

namespace fedtrack::compression {

CompressedClientProxy::CompressedClientProxy(std::shared_ptr<ClientProxy> inner, std::shared_ptr<const Plan> plan)
    : ClientProxy(inner->id()), inner_(std::move(inner)), plan_(std::move(plan)) {}

std::shared_ptr<const Parameters> CompressedClientProxy::received(const std::shared_ptr<const Parameters>& global,
                                                                  std::int64_t round, TransferStats& transfer) const {
  transfer.raw_bytes_down = encoded_size(*global);
  if (plan_->downlink == Codec::kRaw) return global;
  const std::string bytes = encode_model(*plan_, *global, round);
  transfer.bytes_down = bytes.size();
  return std::make_shared<const Parameters>(decode_model(bytes, *global));
}

FitRes CompressedClientProxy::fit(const FitIns& ins, TransferStats& transfer) {
  const std::int64_t round = config_int(ins.config, "round", 0);
  FitIns sent = ins;
  TransferStats down;
  sent.parameters = received(ins.parameters, round, down);
  FitRes res = inner_->fit(sent, transfer);
  transfer.raw_bytes_down = down.raw_bytes_down;
  if (down.bytes_down) transfer.bytes_down = down.bytes_down;
  const std::string up = encode_update(*plan_, res.parameters, *sent.parameters, round, id(), &residual_);
  transfer.raw_bytes_up = encoded_size(res.parameters);
  transfer.bytes_up = up.size();
  res.parameters = apply_update(up, *ins.parameters);
  return res;
}

EvaluateRes CompressedClientProxy::evaluate(const EvaluateIns& ins, TransferStats& transfer) {
  EvaluateIns sent = ins;
  TransferStats down;
  sent.parameters = received(ins.parameters, config_int(ins.config, "round", 0), down);
  EvaluateRes res = inner_->evaluate(sent, transfer);
  transfer.raw_bytes_down = down.raw_bytes_down;
  if (down.bytes_down) transfer.bytes_down = down.bytes_down;
  return res;
}

}  // namespace fedtrack::compression
