#include "net/site.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <sstream>

#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/text.h"
#include "parameter_stream.h"
#include "wire.h"

namespace fedtrack::net {
namespace {
Result perform_with(const Site& site, TaskMessage& task, const Parameters* decoded, const std::string& rejection,
                    const std::function<void(const std::string&)>& log);
}  // namespace

std::string data_signature(const Joined& j) {
  std::ostringstream sig;
  sig << j.model << '|' << join_ints(j.feature_shape) << '|' << j.num_classes << '|' << join_names(j.classes) << '|'
      << join_doubles(j.scaling_mean) << '|' << join_doubles(j.scaling_stddev) << '|' << j.val_fraction << '|'
      << static_cast<std::uint64_t>(j.data_seed);
  return sig.str();
}

Site make_site(const Joined& joined, const std::string& data_dir, const std::function<void(const std::string&)>& log) {
  ShardFormat format;
  format.format = joined.format;
  format.feature_shape = joined.feature_shape;
  format.scaling.mean = joined.scaling_mean;
  format.scaling.stddev = joined.scaling_stddev;
  format.class_names = joined.classes;
  format.label_column = joined.label;
  format.num_classes = joined.num_classes;
  const auto seed = static_cast<std::uint64_t>(joined.data_seed);

  TensorData all = read_shard(data_dir, format);
  std::vector<std::int64_t> order(static_cast<std::size_t>(all.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const auto n_val = static_cast<std::size_t>(static_cast<double>(order.size()) * joined.val_fraction);
  std::vector<std::int64_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::vector<std::int64_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  if (train.empty()) throw Error::invalid_argument("data: " + data_dir + " leaves no training examples");
  Site site;
  auto model = make_model(joined.model, ModelInput{format.feature_shape, joined.num_classes});
  site.inbox = std::make_shared<Parameters>(clone(parameters_from_module(*model.ptr())));
  site.layout = site.inbox;  // names and shapes (decodes compressed models); the values are the inbox's
  site.app = std::make_shared<TorchClient>(std::move(model), select_rows(all, train), select_rows(all, val), seed);
  site.signature = data_signature(joined);
  log("data " + data_dir + ": " + std::to_string(train.size()) + " training / " + std::to_string(val.size()) +
      " validation examples, fingerprint " + site.app->data_fingerprint().substr(0, 16) + "; model " + joined.model);
  return site;
}

void adopt_compression(Site& site, const Joined& joined) {
  site.client = joined.client;
  if (!joined.compressing()) {
    site.compression.reset();
    return;
  }
  CompressionSpec spec;
  spec.uplink = joined.compression_uplink;
  spec.downlink = joined.compression_downlink;
  spec.topk_fraction = joined.topk_fraction;
  spec.error_feedback = joined.error_feedback;
  site.compression = std::make_shared<const compression::Plan>(
      compression::plan_for(spec, static_cast<std::uint64_t>(joined.compression_seed)));
  if (!site.residual || site.residual_job != joined.job_id) {
    site.residual = std::make_shared<compression::Residual>();
    site.residual_job = joined.job_id;
  }
}

ReceivedTask read_task(std::uint64_t size, const ByteSource& source, Site* site) {
  auto read_exactly = [&](char* buffer, std::size_t n) {
    for (std::size_t got = 0; got < n;) {
      const std::size_t k = source(buffer + got, n - got);
      if (k == 0) throw Error::corruption("the server's answer ended early");
      got += k;
    }
  };
  if (size < kMessagePrefixBytes) throw Error::corruption("the server sent a " + std::to_string(size) + "-byte answer");
  std::string head(kMessagePrefixBytes, '\0');
  read_exactly(head.data(), head.size());
  const std::uint64_t head_size = message_head_size(head);
  if (head_size > size) throw Error::corruption("the server's answer is shorter than its head");
  head.resize(static_cast<std::size_t>(head_size));
  read_exactly(head.data() + kMessagePrefixBytes, head.size() - kMessagePrefixBytes);
  ReceivedTask out;
  std::uint64_t payload_size = 0;
  out.message = decode_task_head(head, payload_size);
  if (payload_size != size - head_size) throw Error::corruption("the server's answer disagrees with its payload length");
  if (payload_size == 0) return out;
  // A compressed model (docs/compression.md) is decoded from the payload.
  // A stage of secure aggregation carries its own bytes, not a model.
  const bool model = out.message.head.kind == MessageKind::kFitTask || out.message.head.kind == MessageKind::kEvaluateTask;
  if (model && site && site->inbox && out.message.head.encoding != kCompressedModelEncoding) {
    StreamedUpdate model = read_update(source, payload_size, *site->inbox, "the server's model", site->inbox.get());
    out.in_inbox = model.rejection.empty();
    out.rejection = std::move(model.rejection);
    return out;
  }
  out.message.payload.resize(static_cast<std::size_t>(payload_size));
  read_exactly(out.message.payload.data(), out.message.payload.size());
  return out;
}

Result perform(const Site& site, ReceivedTask& task, const std::function<void(const std::string&)>& log) {
  if (!task.in_inbox && task.rejection.empty()) return perform(site, task.message, log);
  return perform_with(site, task.message, task.in_inbox ? site.inbox.get() : nullptr, task.rejection, log);
}

Result perform(const Site& site, TaskMessage& task, const std::function<void(const std::string&)>& log) {
  return perform_with(site, task, nullptr, "", log);
}

namespace {
Result perform_with(const Site& site, TaskMessage& task, const Parameters* decoded, const std::string& rejection,
                    const std::function<void(const std::string&)>& log) {
  Result result;
  result.job_id = task.head.job_id;
  result.task_id = task.head.task_id;
  result.round = task.head.round;
  const auto start = std::chrono::steady_clock::now();
  try {
    if (!rejection.empty()) throw Error::invalid_argument(rejection);
    const Parameters global = decoded                                            ? *decoded
                              : task.head.encoding == kCompressedModelEncoding ? compression::decode_model(task.payload, *site.layout)
                                                                               : decode_parameters(task.payload);
    std::string().swap(task.payload);
    if (task.head.kind == MessageKind::kFitTask) {
      FitRes res = site.app->fit(global, task.head.config);
      result.kind = MessageKind::kFitResult;
      result.num_examples = res.num_examples;
      result.data_fingerprint = res.data_fingerprint;
      result.metrics = std::move(res.metrics);
      if (site.compression) {
        result.payload = compression::encode_update(*site.compression, res.parameters, global, task.head.round,
                                                    site.client, site.residual.get());
        result.encoding = kCompressedUpdateEncoding;
      } else {
        result.payload = encode_parameters(res.parameters);
      }
    } else {
      EvaluateRes res = site.app->evaluate(global, task.head.config);
      result.kind = MessageKind::kEvaluateResult;
      result.num_examples = res.num_examples;
      result.loss = res.loss;
      result.metrics = std::move(res.metrics);
    }
    result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } catch (const std::exception& e) {
    result.kind = MessageKind::kTaskFailed;
    result.error = truncate_utf8(to_valid_utf8(e.what()), kMaxErrorTextBytes);
    log("round " + std::to_string(task.head.round) + ": " + message_kind_name(task.head.kind) + " failed: " + e.what());
  }
  return result;
}

}  // namespace

}  // namespace fedtrack::net
