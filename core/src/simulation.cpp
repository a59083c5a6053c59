#include "fedtrack/core/simulation.h"

#include <torch/nn/module.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <sstream>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/partition.h"
#include "fedtrack/core/server.h"
#include "compression/compressed_proxy.h"
#include "thread_pool.h"
#include "job_runtime.h"
#include "privacy/secagg/secagg_round.h"
#include "virtual_clients.h"

namespace fedtrack {
namespace {

// Calls a ClientApp in this process. The bytes it reports are what the wire
// encoding of the models would weigh.
class InProcessClientProxy : public ClientProxy {
 public:
  InProcessClientProxy(std::string id, std::shared_ptr<ClientApp> app, std::int64_t work = 0)
      : ClientProxy(std::move(id)), app_(std::move(app)), work_(work) {}

  std::int64_t expected_work() const override { return work_; }

  FitRes fit(const FitIns& ins, TransferStats& transfer) override {
    transfer.bytes_down = encoded_size(*ins.parameters);
    const auto start = std::chrono::steady_clock::now();
    FitRes res = app_->fit(*ins.parameters, ins.config);
    transfer.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    transfer.bytes_up = encoded_size(res.parameters);
    return res;
  }

  EvaluateRes evaluate(const EvaluateIns& ins, TransferStats& transfer) override {
    transfer.bytes_down = encoded_size(*ins.parameters);
    return app_->evaluate(*ins.parameters, ins.config);
  }

 private:
  std::shared_ptr<ClientApp> app_;
  std::int64_t work_;
};

// A Byzantine client for robustness experiments: trains honestly, then sends
// global + scale * (update - global).
class ScaledUpdateClient : public ClientApp {
 public:
  ScaledUpdateClient(std::shared_ptr<ClientApp> honest, double scale) : honest_(std::move(honest)), scale_(scale) {}
  FitRes fit(const Parameters& global, const ConfigRecord& config) override {
    FitRes res = honest_->fit(global, config);
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < global.buffer_begin; ++i) {
      auto& t = res.parameters.tensors[i];
      t = global.tensors[i] + (t - global.tensors[i]) * scale_;
    }
    return res;
  }
  EvaluateRes evaluate(const Parameters& global, const ConfigRecord& config) override {
    return honest_->evaluate(global, config);
  }

 private:
  std::shared_ptr<ClientApp> honest_;
  double scale_;
};

std::string client_id(std::int64_t index, std::int64_t count) {
  const int width = std::max<int>(3, static_cast<int>(std::to_string(count - 1).size()));
  std::string digits = std::to_string(index);
  return "client-" + std::string(width - digits.size(), '0') + digits;
}

}  // namespace

JobResult run_simulation(const JobSpec& job, const JobRunOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const std::size_t cores = ThreadPool::cores();
  const std::size_t parallelism = std::min<std::size_t>(
      job.runtime.parallelism > 0 ? static_cast<std::size_t>(job.runtime.parallelism) : cores,
      static_cast<std::size_t>(job.clients.count));
  const int threads_per_client = static_cast<int>(
      job.runtime.threads_per_client > 0 ? job.runtime.threads_per_client
                                         : std::max<std::size_t>(1, cores / parallelism));
  torch::set_num_threads(static_cast<int>(cores));  // for loading and central evaluation

  DatasetSplits data = at_key(job, "data.dataset", [&] { return load_dataset(job.data, job.seed); });
  Partitions parts;
  {
    std::vector<std::int64_t> labels(data.train.labels.data_ptr<std::int64_t>(),
                                     data.train.labels.data_ptr<std::int64_t>() + data.train.size());
    parts = at_key(job, "data.partition", [&] { return partition(labels, job.clients.count, job.data.partition, job.seed); });
    std::size_t smallest = parts.front().size(), largest = 0;
    for (const auto& p : parts) {
      smallest = std::min(smallest, p.size());
      largest = std::max(largest, p.size());
    }
    std::ostringstream line;
    line << data.description << ": " << data.train.size() << " train / " << data.test.size()
         << " test examples, " << data.num_classes << " classes; " << job.clients.count
         << " clients (" << job.data.partition.kind << ", " << smallest << ".." << largest
         << " examples each, label skew " << label_skew(labels, parts) << ")";
    log(line.str());
  }

  StateKeeper state(options.state_path, options.resume, job, options.job_digest);
  const std::string job_id = state.adopt_job_id(options.job_id);
  ServerSide side = make_server_side(job, data, log);
  const ModelInput& input = side.input;
  log(std::to_string(parallelism) + " clients in parallel x " + std::to_string(threads_per_client) + " threads");

  std::shared_ptr<const compression::Plan> compressing;
  if (job.compression.enabled()) {
    compressing = std::make_shared<const compression::Plan>(compression::plan_for(job.compression, job.seed));
    at_key(job, "compression.uplink", [&] { compression::check_compressible(parameters_from_module(*side.model.ptr())); });
  }
  // Each client keeps val_fraction of its share (a seeded draw) for
  // evaluation. Clients are built when sampled, from the training split
  // the population keeps and one of `parallelism` model replicas.
  const auto population = VirtualClients::create(
      std::move(data.train), ClientShares(std::move(parts), job.data.val_fraction, job.seed),
      [&] { return make_model(job.model, input); }, parallelism, job.seed);
  ClientManager clients(job.seed);
  JobResult result;
  result.job_id = job_id;
  for (std::int64_t c = 0; c < job.clients.count; ++c) {
    std::shared_ptr<ClientApp> site = population->app(static_cast<std::size_t>(c));
    if (c < job.attack.clients) site = std::make_shared<ScaledUpdateClient>(site, job.attack.scale);
    const auto examples = static_cast<std::int64_t>(population->shares().train(static_cast<std::size_t>(c)).size);
    std::shared_ptr<ClientProxy> proxy =
        std::make_shared<InProcessClientProxy>(client_id(c, job.clients.count), site, examples);
    if (compressing) proxy = std::make_shared<compression::CompressedClientProxy>(proxy, compressing);
    clients.add(proxy);
  }

  ServerOptions server_options = server_options_for(job, job_id);
  server_options.model_card = side.card;
  server_options.test_set = side.test_set;
  server_options.parallelism = parallelism;
  server_options.on_worker_start = [threads_per_client] { torch::set_num_threads(threads_per_client); };
  server_options.stop_requested = options.stop_requested;
  if (job.secure_aggregation.enabled()) {
    server_options.secure_aggregation = in_process_secure_aggregation(job.secure_aggregation, job.seed);
  }
  run_rounds(clients, *side.strategy, server_options, state, options.listeners, options.state_path, log, result);
  result.client_fingerprints.reserve(population->size());
  for (std::size_t c = 0; c < population->size(); ++c) result.client_fingerprints.push_back(population->fingerprint(c));
  return result;
}

}  // namespace fedtrack
