#include "net/remote_site.h"

#include "fedtrack/core/error.h"

namespace fedtrack::net {

std::shared_ptr<const std::string> ModelPayloads::payload_for(const std::shared_ptr<const Parameters>& global,
                                                              int round) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto payload = payload_.lock();
  const bool same_model = !global_.owner_before(global) && !global.owner_before(global_) && !global_.expired();
  if (!payload || !same_model) {
    const bool compressed = compression_ && compression_->downlink != compression::Codec::kRaw;
    payload = std::make_shared<const std::string>(compressed ? compression::encode_model(*compression_, *global, round)
                                                             : encode_parameters(*global));
    payload_ = payload;
    global_ = global;
  }
  return payload;
}

std::string ModelPayloads::encoding() const {
  const bool compressed = compression_ && compression_->downlink != compression::Codec::kRaw;
  return compressed ? kCompressedModelEncoding : "";
}

namespace {

// With compression on: what the task and its result would have weighed as
// FTPM models (TransferStats::raw_bytes_*).
void report_uncompressed(const compression::Plan& plan, const TaskHead& head, const Parameters& global,
                         const TaskOutcome& outcome, TransferStats& transfer) {
  TaskHead plain = head;
  plain.encoding.clear();
  const std::uint64_t model = encoded_size(global);
  transfer.raw_bytes_down = encode_task_head(plain, model).size() + model;
  if (!outcome.result || outcome.result->encoding != kCompressedUpdateEncoding) return;
  std::vector<std::size_t> numels;
  for (const auto& t : global.tensors) numels.push_back(static_cast<std::size_t>(t.numel()));
  compression::EncodeOptions options{plan.uplink};
  options.topk_fraction = plan.topk_fraction;
  const std::uint64_t sent = compression::encoded_size(numels, options);
  if (outcome.bytes_up >= sent) transfer.raw_bytes_up = outcome.bytes_up - sent + model;
}

}  // namespace

Result RemoteSite::run_task(MessageKind kind, const ConfigRecord& config,
                            const std::shared_ptr<const Parameters>& global, const Deadline& deadline,
                            TransferStats& transfer, std::shared_ptr<Parameters>* parameters,
                            std::function<void()> before_upload) {
  auto task = std::make_shared<SiteTask>();
  task->kind = kind;
  task->round = static_cast<int>(config_int(config, "round", 0));
  task->global = global;
  task->payload = payloads_.payload_for(global, task->round);
  task->before_upload = std::move(before_upload);
  task->id = registry_.next_task_id();
  TaskHead head;
  head.kind = kind;
  head.job_id = job_.job_id;
  head.task_id = static_cast<std::int64_t>(task->id);
  head.round = task->round;
  head.config = config;
  head.encoding = payloads_.encoding();
  task->head = encode_task_head(head, task->payload->size());
  transfer.bytes_down = task->head.size() + task->payload->size();

  TaskOutcome outcome = registry_.run(id(), task, deadline, job_.stop_requested);
  transfer.bytes_up = outcome.bytes_up;
  transfer.download_seconds = outcome.download_seconds;
  if (payloads_.compression()) report_uncompressed(*payloads_.compression(), head, *global, outcome, transfer);
  transfer.upload_seconds = outcome.upload_seconds;
  if (!outcome.failure.empty()) throw Error::unavailable(outcome.failure);
  if (outcome.result->train_seconds) transfer.train_seconds = *outcome.result->train_seconds;
  if (parameters) *parameters = std::move(outcome.parameters);
  return std::move(*outcome.result);
}

std::string RemoteSite::run_stage(int round, int stage, std::string request, const Deadline& deadline,
                                  std::uint64_t& bytes) {
  auto task = std::make_shared<SiteTask>();
  task->kind = MessageKind::kSecAggTask;
  task->round = round;
  task->secagg_stage = stage;
  task->id = registry_.next_task_id();
  TaskHead head;
  head.kind = MessageKind::kSecAggTask;
  head.job_id = job_.job_id;
  head.task_id = static_cast<std::int64_t>(task->id);
  head.round = round;
  head.stage = stage;
  task->head = encode_task_head(head, request.size());
  bytes += task->head.size() + request.size();
  task->payload = std::make_shared<const std::string>(std::move(request));
  TaskOutcome outcome = registry_.run(id(), task, deadline, job_.stop_requested);
  bytes += outcome.bytes_up;
  if (!outcome.failure.empty()) throw Error::unavailable(outcome.failure);
  return std::move(outcome.result->payload);
}

FitRes RemoteSite::fit(const FitIns& ins, TransferStats& transfer) {
  std::shared_ptr<Parameters> parameters;
  Result result = run_task(MessageKind::kFitTask, ins.config, ins.parameters, ins.deadline, transfer, &parameters,
                           ins.before_upload);
  FitRes res;
  res.parameters = std::move(*parameters);
  res.num_examples = result.num_examples;
  res.metrics = std::move(result.metrics);
  res.data_fingerprint = std::move(result.data_fingerprint);
  return res;
}

EvaluateRes RemoteSite::evaluate(const EvaluateIns& ins, TransferStats& transfer) {
  Result result = run_task(MessageKind::kEvaluateTask, ins.config, ins.parameters, ins.deadline, transfer, nullptr);
  EvaluateRes res;
  res.loss = result.loss;
  res.num_examples = result.num_examples;
  res.metrics = std::move(result.metrics);
  return res;
}

}  // namespace fedtrack::net
