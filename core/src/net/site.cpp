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

namespace fedtrack::net {

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
  torch::nn::AnyModule model = make_model(joined.model, ModelInput{format.feature_shape, joined.num_classes});
  site.layout = std::make_shared<const Parameters>(parameters_from_module(*model.ptr()));
  site.app = std::make_shared<TorchClient>(model, select_rows(all, train), select_rows(all, val), seed);
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

Result perform(const Site& site, TaskMessage& task, const std::function<void(const std::string&)>& log) {
  Result result;
  result.job_id = task.head.job_id;
  result.task_id = task.head.task_id;
  result.round = task.head.round;
  const auto start = std::chrono::steady_clock::now();
  try {
    const Parameters global = task.head.encoding == kCompressedModelEncoding
                                  ? compression::decode_model(task.payload, *site.layout)
                                  : decode_parameters(task.payload);
    task.payload.clear();
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

}  // namespace fedtrack::net
