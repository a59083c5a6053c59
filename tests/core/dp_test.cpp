// Central DP: clipping, the wrappers' noise and norm updates, resume, and the
// accountant's own invariants (its agreement with Google's dp_accounting is
// tests/integration/test_dp_accounting.py).
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <cmath>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/dp_adaptive_clipping.h"
#include "dp_clipping.h"
#include "fedtrack/core/dp_fixed_clipping.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/rdp_accountant.h"
#include "fedtrack/core/strategy_factory.h"
#include "fedtrack/core/torch_client.h"

namespace fedtrack {
namespace {

Parameters params(std::vector<float> w, std::vector<std::int64_t> counter = {}) {
  Parameters p;
  p.names = {"w"};
  p.tensors = {torch::tensor(w)};
  p.buffer_begin = 1;
  if (!counter.empty()) {
    p.names.push_back("count");
    p.tensors.push_back(torch::tensor(counter, torch::kLong));
  }
  return p;
}

FitResult result(const std::string& id, Parameters p, std::int64_t n, Metrics metrics = {}) {
  FitResult r;
  r.client_id = id;
  r.res.parameters = std::move(p);
  r.res.num_examples = n;
  r.res.metrics = std::move(metrics);
  return r;
}

// A client whose model moves from the global one by a fixed per-client,
// per-round vector; in client-side DP modes it clips as TorchClient does.
class ShiftClient : public ClientProxy {
 public:
  ShiftClient(std::string id, int index) : ClientProxy(std::move(id)), index_(index) {}
  FitRes fit(const FitIns& ins, TransferStats&) override {
    const auto round = config_int(ins.config, "round", 0);
    FitRes res;
    res.parameters = clone(*ins.parameters);
    torch::manual_seed(static_cast<std::uint64_t>(1000 * index_ + round));
    res.parameters.tensors[0] += torch::randn_like(res.parameters.tensors[0]) * (0.2 + 0.3 * index_);
    res.num_examples = 10 + index_;
    res.metrics["train_loss"] = index_;
    if (ins.config.count(kDpClippingNormKey)) {
      ClippedModel c = clip_model_update(res.parameters, *ins.parameters, config_double(ins.config, kDpClippingNormKey, 0));
      res.parameters = std::move(c.model);
      res.metrics[kDpNormBitKey] = c.clipped ? 1 : 0;
    }
    return res;
  }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override { return {0.0, 1, {}}; }

 private:
  int index_;
};

void add_shift_clients(ClientManager& clients, int n) {
  for (int c = 0; c < n; ++c) clients.add(std::make_shared<ShiftClient>("c" + std::to_string(c), c));
}

Parameters zeros(std::int64_t n) {
  Parameters p;
  p.names = {"w"};
  p.tensors = {torch::zeros({n})};
  p.buffer_begin = 1;
  return p;
}

// One round through `strategy`, with results in client-id order as the server gives them.
Parameters run_round(Strategy& strategy, int round, const Parameters& global, ClientManager& clients,
                     Metrics* metrics = nullptr) {
  auto shared = std::make_shared<const Parameters>(global);
  auto plan = strategy.configure_fit(round, shared, clients);
  std::vector<FitResult> results;
  for (auto& i : plan) {
    TransferStats t;
    FitIns ins = i.ins;
    ins.config["round"] = static_cast<std::int64_t>(round);
    FitResult r;
    r.client_id = i.client->id();
    r.res = i.client->fit(ins, t);
    results.push_back(std::move(r));
  }
  std::sort(results.begin(), results.end(), [](const auto& a, const auto& b) { return a.client_id < b.client_id; });
  AggregateFitOutcome out = strategy.aggregate_fit(round, results, {});
  if (metrics) *metrics = out.metrics;
  return out.parameters ? *out.parameters : global;
}

JobSpec dp_job(const std::string& mode, const std::string& strategy) {
  JobSpec job;
  job.seed = 99;
  job.clients.count = 20;
  job.clients.fraction_fit = 1.0;
  job.strategy.name = strategy;
  job.privacy.dp.mode = mode;
  job.privacy.dp.noise_multiplier = 1.5;
  job.privacy.dp.clipping_norm = 0.5;
  return job;
}

FedAvgOptions base_with(const Parameters& initial) {
  FedAvgOptions o;
  o.initial_parameters = clone(initial);
  return o;
}

TEST(DpClipping, ScalesTheUpdateToTheNormAndKeepsSmallUpdatesBitForBit) {
  const Parameters global = params({1, 1, 1, 1}, {5});
  const Parameters big = params({4, 5, 1, 1}, {9});  // update (3, 4, 0, 0): norm 5
  EXPECT_DOUBLE_EQ(update_norm(big, global), 5.0);
  ClippedModel c = clip_model_update(big, global, 1.0);
  EXPECT_TRUE(c.clipped);
  EXPECT_DOUBLE_EQ(c.norm, 5.0);
  EXPECT_TRUE(torch::allclose(c.model.tensors[0], torch::tensor({1.6f, 1.8f, 1.0f, 1.0f})));
  EXPECT_NEAR(update_norm(c.model, global), 1.0, 1e-6);
  EXPECT_EQ(c.model.tensors[1].item<std::int64_t>(), 5);  // integer buffers keep the global value

  const Parameters small = params({1.25f, 1, 1, 0.9f}, {6});
  ClippedModel s = clip_model_update(small, global, 1.0);
  EXPECT_FALSE(s.clipped);
  EXPECT_TRUE(torch::equal(s.model.tensors[0], small.tensors[0]));
  EXPECT_EQ(s.model.tensors[1].item<std::int64_t>(), 5);
  EXPECT_THROW(clip_model_update(small, global, 0.0), Error);
}

TEST(DpClipping, NoiseHasTheRequestedSpreadAndFollowsTheRng) {
  Parameters p = zeros(200000);
  const torch::Tensor before = p.tensors[0];
  std::mt19937_64 rng(5);
  add_gaussian_noise(p, 0.3, rng);
  EXPECT_TRUE(torch::equal(before, torch::zeros({200000})));  // not written in place
  EXPECT_NEAR(p.tensors[0].mean().item<double>(), 0.0, 0.003);
  EXPECT_NEAR(p.tensors[0].std().item<double>(), 0.3, 0.003);
  Parameters again = zeros(200000);
  std::mt19937_64 same(5);
  add_gaussian_noise(again, 0.3, same);
  EXPECT_TRUE(torch::equal(p.tensors[0], again.tensors[0]));
}

TEST(DpWrapper, ServerFixedAveragesClippedUpdatesEquallyAndAddsCalibratedNoise) {
  const std::int64_t size = 100000;
  const Parameters global = zeros(size);
  DpOptions o;
  o.noise_multiplier = 2.0;
  o.clipping_norm = 1.0;
  o.num_sampled_clients = 4;
  o.sampling_rate = 0.4;
  o.seed = 3;
  DpServerSideFixedClipping dp(std::make_unique<FedAvg>(FedAvgOptions{}), o);
  ClientManager clients(7);
  add_shift_clients(clients, 4);
  auto shared = std::make_shared<const Parameters>(global);
  auto plan = dp.configure_fit(1, shared, clients);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].ins.config.count(kDpClippingNormKey), 0u);  // the server clips
  // Client k moves every coordinate by (k + 1) * 0.01: norms 3.16, 6.32, 9.49, 12.6 — all clipped to 1.
  std::vector<FitResult> results;
  for (int k = 0; k < 4; ++k) {
    Parameters p = zeros(size);
    p.tensors[0].fill_(0.01f * static_cast<float>(k + 1));
    results.push_back(result("c" + std::to_string(k), p, 1 + 1000 * k, {{"train_loss", k}, {kDpNormBitKey, 1}}));
  }
  auto out = dp.aggregate_fit(1, results, {});
  ASSERT_TRUE(out.parameters);
  // Each clipped update is the unit vector times 1; equal weights despite num_examples.
  const double clipped_coord = 1.0 / std::sqrt(static_cast<double>(size));
  const torch::Tensor noise = out.parameters->tensors[0].to(torch::kDouble) - clipped_coord;
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 0.005);
  EXPECT_NEAR(noise.std().item<double>(), 2.0 * 1.0 / 4, 0.005);  // sigma * C / n
  EXPECT_DOUBLE_EQ(out.metrics.at("train_loss"), 1.5);           // unweighted
  EXPECT_EQ(out.metrics.count(kDpNormBitKey), 0u);
  EXPECT_DOUBLE_EQ(out.metrics.at("dp_clipping_norm"), 1.0);
  RdpAccountant reference(0.4, 2.0);
  reference.compose(1);
  EXPECT_DOUBLE_EQ(out.metrics.at("dp_epsilon"), reference.epsilon(1e-5));
}

TEST(DpWrapper, ARoundWithFailuresReleasesNothingAndCostsNothing) {
  DpOptions o;
  o.num_sampled_clients = 2;
  DpServerSideFixedClipping dp(std::make_unique<FedAvg>(FedAvgOptions{}), o);
  ClientManager clients(7);
  add_shift_clients(clients, 2);
  dp.configure_fit(1, std::make_shared<const Parameters>(params({0, 0})), clients);
  auto out = dp.aggregate_fit(1, {result("c0", params({1, 1}), 1)}, {ClientFailure{"c1", "gone", {}}});
  EXPECT_FALSE(out.parameters);
  EXPECT_DOUBLE_EQ(out.metrics.at("dp_epsilon"), 0.0);
  auto next = dp.aggregate_fit(2, {result("c0", params({1, 1}), 1), result("c1", params({1, 1}), 1)}, {});
  EXPECT_TRUE(next.parameters);
  EXPECT_GT(next.metrics.at("dp_epsilon"), 0.0);
}

TEST(DpWrapper, AdaptiveNormRisesWhenMostUpdatesAreClippedAndFallsWhenFewAre) {
  auto norm_after = [](float shift) {
    DpOptions o;
    o.noise_multiplier = 0.5;
    o.clipping_norm = 1.0;
    o.num_sampled_clients = 20;  // count noise stddev 1: a fraction noise of 0.05
    DpServerSideAdaptiveClipping dp(std::make_unique<FedAvg>(FedAvgOptions{}), o);
    ClientManager clients(7);
    add_shift_clients(clients, 20);
    dp.configure_fit(1, std::make_shared<const Parameters>(params({0, 0})), clients);
    std::vector<FitResult> results;
    for (int k = 0; k < 20; ++k) results.push_back(result("c" + std::to_string(100 + k), params({shift, 0}), 1));
    auto out = dp.aggregate_fit(1, results, {});
    EXPECT_DOUBLE_EQ(out.metrics.at("dp_clipping_norm"), 1.0);  // the norm this round used
    return dp.clipping_norm();
  };
  // All clipped: fraction ~1 > target 0.5, so the norm grows (about exp(0.2 * 0.5)).
  EXPECT_GT(norm_after(5.0f), 1.05);
  // None clipped: the norm shrinks (about exp(-0.2 * 0.5)).
  EXPECT_LT(norm_after(0.1f), 0.95);
}

TEST(DpWrapper, AdaptiveModesSplitSigmaBetweenModelAndCount) {
  DpOptions o;
  o.noise_multiplier = 0.8;
  o.num_sampled_clients = 10;  // count stddev 0.5
  DpServerSideAdaptiveClipping dp(std::make_unique<FedAvg>(FedAvgOptions{}), o);
  EXPECT_NEAR(dp.model_noise_multiplier(), 1.0 / std::sqrt(1 / 0.64 - 1.0), 1e-12);
  o.noise_multiplier = 1.0;  // >= 2 * 0.5: nothing left for the model
  EXPECT_THROW(DpServerSideAdaptiveClipping(std::make_unique<FedAvg>(FedAvgOptions{}), o), Error);
  o.clipped_count_stddev = 2.0;
  EXPECT_NO_THROW(DpServerSideAdaptiveClipping(std::make_unique<FedAvg>(FedAvgOptions{}), o));
}

TEST(DpWrapper, ClientModesSendTheNormAndReclipAnUpdateThatIsTooLong) {
  DpOptions o;
  o.clipping_norm = 1.0;
  o.num_sampled_clients = 2;
  o.clipped_count_stddev = 1.0;
  DpClientSideAdaptiveClipping dp(std::make_unique<FedAvg>(FedAvgOptions{}), o);
  ClientManager clients(7);
  add_shift_clients(clients, 2);
  auto plan = dp.configure_fit(1, std::make_shared<const Parameters>(params({0, 0})), clients);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_DOUBLE_EQ(config_double(plan[0].ins.config, kDpClippingNormKey, 0), 1.0);
  // c1 ignored the norm (update length 100) but claims it did not clip.
  EXPECT_THROW(dp.aggregate_fit(1, {result("c0", params({0.5, 0}), 1), result("c1", params({100, 0}), 1)}, {}),
               Error);  // no dp_norm_bit at all
  DpOptions quiet = o;
  quiet.noise_multiplier = 1e-9;
  DpClientSideAdaptiveClipping dp2(std::make_unique<FedAvg>(FedAvgOptions{}), quiet);
  dp2.configure_fit(1, std::make_shared<const Parameters>(params({0, 0})), clients);
  auto out = dp2.aggregate_fit(1,
                               {result("c0", params({0.5, 0}), 1, {{kDpNormBitKey, 0}}),
                                result("c1", params({100, 0}), 1, {{kDpNormBitKey, 0}})},
                               {});
  ASSERT_TRUE(out.parameters);
  EXPECT_NEAR(out.parameters->tensors[0][0].item<float>(), (0.5 + 1.0) / 2, 1e-6);
}

TEST(DpWrapper, TorchClientClipsWhenTheConfigCarriesANorm) {
  torch::manual_seed(3);
  torch::nn::AnyModule model(torch::nn::Linear(4, 3));
  torch::manual_seed(4);
  TensorData data{torch::randn({64, 4}), torch::randint(0, 3, {64})};
  TorchClient client(model, data, {}, 11);
  const Parameters global = parameters_from_module(*model.ptr());
  ConfigRecord config{{"epochs", std::int64_t{3}}, {"lr", 0.5}, {"batch_size", std::int64_t{8}}};
  const FitRes free = client.fit(global, config);
  EXPECT_EQ(free.metrics.count(kDpNormBitKey), 0u);
  const double free_norm = update_norm(free.parameters, global);
  ASSERT_GT(free_norm, 0.02);
  config[kDpClippingNormKey] = 0.01;
  const FitRes clipped = client.fit(global, config);
  EXPECT_NEAR(update_norm(clipped.parameters, global), 0.01, 1e-6);
  EXPECT_DOUBLE_EQ(clipped.metrics.at(kDpNormBitKey), 1.0);
  config[kDpClippingNormKey] = free_norm * 2;
  const FitRes loose = client.fit(global, config);
  EXPECT_DOUBLE_EQ(loose.metrics.at(kDpNormBitKey), 0.0);
}

// Resume: rounds 1..6 straight through must equal rounds 1..3, save, a new
// wrapper restored from the record, rounds 4..6 — to the bit, for every mode,
// around a stateful inner strategy (FedAdam's moments ride under "inner.").
class DpResume : public ::testing::TestWithParam<std::string> {};

TEST_P(DpResume, ContinuesBitIdentically) {
  const JobSpec job = dp_job(GetParam(), "fedadam");
  const Parameters initial = zeros(50);
  ClientManager clients(7);
  add_shift_clients(clients, 20);

  auto straight = make_job_strategy(job, base_with(initial));
  straight->initialize_parameters(clients);
  Parameters a = initial;
  Metrics last_straight;
  for (int r = 1; r <= 6; ++r) a = run_round(*straight, r, a, clients, &last_straight);

  auto first = make_job_strategy(job, base_with(initial));
  first->initialize_parameters(clients);
  Parameters b = initial;
  for (int r = 1; r <= 3; ++r) b = run_round(*first, r, b, clients);
  const std::string saved = encode_state(first->save_state());
  first.reset();
  auto resumed = make_job_strategy(job, base_with(initial));
  resumed->restore_state(b, decode_state(saved));
  Metrics last_resumed;
  for (int r = 4; r <= 6; ++r) b = run_round(*resumed, r, b, clients, &last_resumed);

  EXPECT_TRUE(torch::equal(a.tensors[0], b.tensors[0])) << GetParam();
  EXPECT_EQ(last_straight.at("dp_epsilon"), last_resumed.at("dp_epsilon"));
  EXPECT_EQ(last_straight.at("dp_clipping_norm"), last_resumed.at("dp_clipping_norm"));
  RdpAccountant six(1.0, 1.5);
  six.compose(6);
  EXPECT_DOUBLE_EQ(last_resumed.at("dp_epsilon"), six.epsilon(1e-5));
  // And the noise is really there: a different seed gives a different model.
  JobSpec other = job;
  other.seed = 100;
  auto different = make_job_strategy(other, base_with(initial));
  different->initialize_parameters(clients);
  Parameters c = initial;
  for (int r = 1; r <= 6; ++r) c = run_round(*different, r, c, clients);
  EXPECT_FALSE(torch::equal(a.tensors[0], c.tensors[0]));
}

INSTANTIATE_TEST_SUITE_P(Modes, DpResume,
                         ::testing::Values("server_fixed", "server_adaptive", "client_fixed", "client_adaptive"));

TEST(DpFactory, NoPrivacyMeansTheBareStrategyAndEveryModeWraps) {
  JobSpec job;
  EXPECT_EQ(make_job_strategy(job, FedAvgOptions{})->name(), "fedavg");
  job.clients.count = 40;
  job.clients.fraction_fit = 0.5;
  for (const auto& mode : dp_mode_names()) {
    job.privacy.dp.mode = mode;
    EXPECT_EQ(make_job_strategy(job, FedAvgOptions{})->name(), "fedavg+dp_" + mode);
  }
  job.privacy.dp.mode = "local";
  EXPECT_THROW(make_job_strategy(job, FedAvgOptions{}), Error);
}

TEST(RdpAccountant, MatchesTheGaussianMechanismInClosedFormAtFullSampling) {
  // q = 1: RDP alpha / (2 sigma^2) at every order.
  const auto orders = default_rdp_orders();
  const auto rdp = rdp_poisson_subsampled_gaussian(1.0, 2.0, orders);
  for (std::size_t k = 0; k < orders.size(); ++k) EXPECT_DOUBLE_EQ(rdp[k], orders[k] / 8.0);
  EXPECT_EQ(orders.size(), 99u + 53u + 4u);
  // Sampling only helps; more rounds only hurt.
  RdpAccountant full(1.0, 1.0), sampled(0.1, 1.0);
  full.compose(10);
  sampled.compose(10);
  EXPECT_LT(sampled.epsilon(1e-5), full.epsilon(1e-5));
  EXPECT_EQ(RdpAccountant(0.1, 1.0).epsilon(1e-5), 0.0);
  EXPECT_THROW(sampled.epsilon(1.0), Error);
  EXPECT_THROW(RdpAccountant(1.5, 1.0), Error);
}

}  // namespace
}  // namespace fedtrack
