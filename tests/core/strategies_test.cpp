// Hand-checked values for the strategies beyond FedAvg; the comparison with
// Flower's implementations is tests/integration/test_strategies_vs_flower.py.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedavgm.h"
#include "fedtrack/core/fedmedian.h"
#include "fedtrack/core/fedtrimmedavg.h"
#include "fedtrack/core/krum.h"
#include "fedtrack/core/strategy_factory.h"
#include "fedtrack/core/torch_client.h"

namespace fedtrack {
namespace {

FitResult result(std::vector<float> w, std::int64_t n) {
  FitResult r;
  r.res.parameters.names = {"w"};
  r.res.parameters.tensors = {torch::tensor(w)};
  r.res.parameters.buffer_begin = 1;
  r.res.num_examples = n;
  return r;
}

TEST(Strategies, MedianTakesTheMiddleAndAveragesAnEvenPair) {
  FedMedian median{FedAvgOptions{}};
  auto odd = median.aggregate_fit(1, {result({1, 10}, 1), result({2, -5}, 100), result({100, 0}, 1)}, {});
  EXPECT_TRUE(torch::equal(odd.parameters->tensors[0], torch::tensor({2.0f, 0.0f})));
  auto even = median.aggregate_fit(1, {result({1}, 1), result({2}, 1), result({4}, 1), result({100}, 1)}, {});
  EXPECT_FLOAT_EQ(even.parameters->tensors[0].item<float>(), 3.0f);
}

TEST(Strategies, TrimmedMeanDropsBothTails) {
  FedTrimmedAvg trimmed(FedAvgOptions{}, 0.2);  // 5 clients: int(0.2 * 5) = 1 cut at each end
  auto out = trimmed.aggregate_fit(
      1, {result({-100}, 1), result({1}, 1), result({2}, 1), result({3}, 1), result({1000}, 1)}, {});
  EXPECT_FLOAT_EQ(out.parameters->tensors[0].item<float>(), 2.0f);
}

TEST(Strategies, KrumIgnoresTheOutlier) {
  Krum krum(FedAvgOptions{}, 1, 0);
  auto out = krum.aggregate_fit(
      1, {result({1, 1}, 1), result({1.1f, 0.9f}, 1), result({0.9f, 1.0f}, 1), result({50, -50}, 1)}, {});
  const float x = out.parameters->tensors[0][0].item<float>();
  EXPECT_LT(std::abs(x - 1.0f), 0.2f);
  Krum multi(FedAvgOptions{}, 1, 2);  // the two best, weighted by num_examples
  auto avg = multi.aggregate_fit(1, {result({1, 1}, 1), result({1.2f, 1.0f}, 3), result({40, 40}, 1)}, {});
  EXPECT_NEAR(avg.parameters->tensors[0][0].item<float>(), (1 + 3 * 1.2) / 4, 1e-6);
}

TEST(Strategies, FedAvgMStepsWithMomentum) {
  FedAvgOptions o;
  Parameters initial;
  initial.names = {"w"};
  initial.tensors = {torch::tensor({0.0f})};
  initial.buffer_begin = 1;
  o.initial_parameters = initial;
  FedAvgM m(o, 1.0, 0.5);
  ClientManager clients(0);
  m.initialize_parameters(clients);
  // Round 1: fedavg 1 -> pseudo-gradient -1 -> w = 0 + 1 = 1.
  EXPECT_FLOAT_EQ(m.aggregate_fit(1, {result({1}, 1)}, {}).parameters->tensors[0].item<float>(), 1.0f);
  // Round 2: fedavg 2 -> pseudo -1, momentum 0.5 * -1 + -1 = -1.5 -> w = 2.5.
  EXPECT_FLOAT_EQ(m.aggregate_fit(2, {result({2}, 1)}, {}).parameters->tensors[0].item<float>(), 2.5f);
}

TEST(Strategies, FedProxKeepsTheClientCloserToTheGlobalModel) {
  auto drift = [](double mu) {
    torch::manual_seed(3);
    torch::nn::AnyModule model(torch::nn::Linear(4, 3));
    torch::manual_seed(4);
    TensorData data{torch::randn({64, 4}), torch::randint(0, 3, {64})};
    TorchClient client(model, data, {}, 11);
    const Parameters global = parameters_from_module(*model.ptr());
    ConfigRecord config{{"epochs", std::int64_t{5}}, {"lr", 0.5}, {"batch_size", std::int64_t{8}}};
    if (mu > 0) config["proximal_mu"] = mu;
    const FitRes res = client.fit(global, config);
    double d = 0;
    for (std::size_t i = 0; i < global.size(); ++i) d += (res.parameters.tensors[i] - global.tensors[i]).pow(2).sum().item<double>();
    return d;
  };
  EXPECT_LT(drift(1.0), drift(0.0) * 0.5);  // lr * mu < 2 keeps the proximal step stable
}

// make_strategy builds every strategy the registry (which the job reader
// checks names and options against) lists, and nothing else.
TEST(Strategies, EveryRegisteredStrategyHasAFactory) {
  for (const auto& info : strategy_registry()) {
    StrategySpec spec;
    spec.name = info.name;
    if (info.option("proximal_mu")) spec.proximal_mu = 0.1;         // required by fedprox
    if (info.option("num_clients_to_keep")) spec.num_clients_to_keep = 1;  // required by multikrum
    EXPECT_EQ(make_strategy(spec, FedAvgOptions{})->name(), info.name);
  }
  StrategySpec unknown;
  unknown.name = "fedsgd";
  try {
    make_strategy(unknown, FedAvgOptions{});
    ADD_FAILURE() << "fedsgd was built";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace fedtrack
