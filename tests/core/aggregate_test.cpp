#include <gtest/gtest.h>

#include "fedtrack/core/aggregate.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedavg.h"

namespace fedtrack {
namespace {

Parameters params(std::vector<float> w, std::int64_t counter) {
  Parameters p;
  p.names = {"fc.weight", "bn.num_batches_tracked"};
  p.tensors = {torch::tensor(w), torch::tensor({counter}, torch::kLong)};
  p.buffer_begin = 1;
  return p;
}

FitResult fit_result(const std::string& id, Parameters p, std::int64_t n, double loss) {
  FitResult r;
  r.client_id = id;
  r.res.parameters = std::move(p);
  r.res.num_examples = n;
  r.res.metrics = {{"train_loss", loss}};
  return r;
}

TEST(Aggregate, WeightedAverageMatchesHandComputedValues) {
  // (1 * [1, 2] + 3 * [3, 6]) / 4 = [2.5, 5]; counters (1*10 + 3*20) / 4 = 17.5 -> 18.
  const Parameters a = params({1, 2}, 10), b = params({3, 6}, 20);
  const Parameters avg = weighted_average({{&a, 1.0}, {&b, 3.0}});
  EXPECT_TRUE(torch::equal(avg.tensors[0], torch::tensor({2.5f, 5.0f})));
  EXPECT_EQ(avg.tensors[1].scalar_type(), torch::kLong);
  EXPECT_EQ(avg.tensors[1].item<std::int64_t>(), 18);
  EXPECT_EQ(avg.names, a.names);
  EXPECT_EQ(avg.buffer_begin, 1u);
}

TEST(Aggregate, StreamingAccumulatorEqualsBatchAverage) {
  const Parameters a = params({0.1f, -4}, 1), b = params({7, 0.25f}, 2), c = params({-1, 1}, 3);
  WeightedAverage streaming(a, 6.0);
  streaming.add(a, 1);
  streaming.add(b, 2);
  streaming.add(c, 3);
  const Parameters batch = weighted_average({{&a, 1}, {&b, 2}, {&c, 3}});
  EXPECT_TRUE(torch::equal(streaming.result().tensors[0], batch.tensors[0]));
  EXPECT_NEAR(batch.tensors[0][0].item<float>(), (0.1 + 14 - 3) / 6, 1e-6);
}

TEST(Aggregate, MismatchedUpdateIsRejected) {
  const Parameters a = params({1, 2}, 1);
  Parameters wrong = params({1, 2, 3}, 1);
  WeightedAverage avg(a, 2);
  try {
    avg.add(wrong, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "aggregate: update tensor 'fc.weight' differs in shape or dtype from the global model");
  }
}

TEST(Aggregate, MetricsAreWeightedPerKey) {
  const Metrics m1{{"loss", 1.0}, {"acc", 0.5}}, m2{{"loss", 2.0}};
  const Metrics avg = weighted_metrics_average({{&m1, 1}, {&m2, 3}});
  EXPECT_DOUBLE_EQ(avg.at("loss"), 1.75);
  EXPECT_DOUBLE_EQ(avg.at("acc"), 0.5);  // only m1 has it
}

TEST(FedAvg, WeightsByNumExamples) {
  FedAvg strategy{FedAvgOptions{}};
  const std::vector<FitResult> results = {fit_result("a", params({1, 2}, 0), 1, 1.0),
                                          fit_result("b", params({3, 6}, 0), 3, 2.0)};
  const AggregateFitOutcome out = strategy.aggregate_fit(1, results, {});
  ASSERT_TRUE(out.parameters.has_value());
  EXPECT_TRUE(torch::equal(out.parameters->tensors[0], torch::tensor({2.5f, 5.0f})));
  EXPECT_DOUBLE_EQ(out.metrics.at("train_loss"), 1.75);
}

TEST(FedAvg, EqualExamplesGivePlainMean) {
  FedAvg strategy{FedAvgOptions{}};
  const std::vector<FitResult> results = {fit_result("a", params({1, 2}, 0), 5, 0),
                                          fit_result("b", params({3, 6}, 0), 5, 0)};
  const auto out = strategy.aggregate_fit(1, results, {});
  EXPECT_TRUE(torch::equal(out.parameters->tensors[0], torch::tensor({2.0f, 4.0f})));
}

TEST(FedAvg, FailuresAreHonouredOrRefused) {
  const std::vector<FitResult> results = {fit_result("a", params({1, 2}, 0), 1, 0)};
  const std::vector<ClientFailure> failures = {{"b", "timed out", {}}};
  FedAvgOptions accepting;
  EXPECT_TRUE(FedAvg(accepting).aggregate_fit(1, results, failures).parameters.has_value());
  FedAvgOptions strict;
  strict.accept_failures = false;
  EXPECT_FALSE(FedAvg(strict).aggregate_fit(1, results, failures).parameters.has_value());
  EXPECT_FALSE(FedAvg(accepting).aggregate_fit(1, {}, failures).parameters.has_value());
}

TEST(FedAvg, FederatedEvaluationIsWeightedByExamples) {
  FedAvg strategy{FedAvgOptions{}};
  std::vector<EvaluateResult> results(2);
  results[0].res = {0.5, 1, {{"accuracy", 1.0}}};
  results[1].res = {1.5, 3, {{"accuracy", 0.0}}};
  const auto out = strategy.aggregate_evaluate(1, results, {});
  EXPECT_DOUBLE_EQ(*out.loss, 1.25);
  EXPECT_DOUBLE_EQ(out.metrics.at("accuracy"), 0.25);
}

}  // namespace
}  // namespace fedtrack
