// Compression in the simulation runtime: updates and broadcasts really go
// through encode -> decode, the bytes reported are the encoded sizes, and a
// compressed job stays bit-identical per seed.
#include <gtest/gtest.h>

#include <cmath>

#include "fedtrack/core/compression.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/simulation.h"
#include "net/site.h"

namespace fedtrack {
namespace {

JobSpec small_job() {
  JobSpec job;
  job.name = "compressed-slice";
  job.seed = 7;
  job.rounds = 2;
  job.data.path = FEDTRACK_FASHION_MNIST_DIR;
  job.data.limit_train = 3000;
  job.data.limit_test = 1000;
  job.clients.count = 5;
  job.evaluation.federated = false;
  return job;
}

class Collect : public RoundListener {
 public:
  void on_round(const RoundSummary& s) override { rounds.push_back(s); }
  std::vector<RoundSummary> rounds;
};

Parameters model_of(const RoundSummary& s) { return decode_parameters(s.model->encoded_parameters()); }

TEST(CompressionSimulation, TopkUpdatesReallyAreSparseAndBytesAreTheEncodedSize) {
  JobSpec job = small_job();
  job.compression.uplink = "topk";
  job.compression.topk_fraction = 0.001;
  Collect collect;
  JobRunOptions options;
  options.listeners = {&collect};
  const JobResult r = run_simulation(job, options);
  ASSERT_EQ(collect.rounds.size(), 2u);
  const Parameters before = model_of(collect.rounds[0]);
  const Parameters after = model_of(collect.rounds[1]);
  std::uint64_t expected_up = 12;
  for (std::size_t t = 0; t < after.size(); ++t) {
    const auto n = static_cast<std::size_t>(after.tensors[t].numel());
    const std::size_t k = compression::topk_count(n, 0.001);
    expected_up += 8 + 8 + 8 * k;
    // FedAvg of 5 sparse updates moves at most 5 k coordinates (beyond float rounding).
    const auto moved = (after.tensors[t] - before.tensors[t]).abs().gt(1e-6).sum().item<std::int64_t>();
    EXPECT_GT(moved, 0) << after.names[t];
    EXPECT_LE(static_cast<std::size_t>(moved), 5 * k) << after.names[t];
  }
  const RoundSummary& s = collect.rounds[1];
  for (const auto& c : s.clients) {
    EXPECT_EQ(c.bytes_up, expected_up) << c.client_id;
    EXPECT_EQ(c.bytes_down, encoded_size(before)) << c.client_id;  // downlink none: the FTPM model
  }
  EXPECT_GT(s.metrics.at("compression_ratio_up"), 100.0);
  EXPECT_EQ(s.metrics.at("compression_ratio_down"), 1.0);
  EXPECT_EQ(r.rounds.back().second.at("compression_ratio_up"), s.metrics.at("compression_ratio_up"));
}

TEST(CompressionSimulation, Int8BothWaysIsFourTimesSmallerStillLearnsAndIsDeterministic) {
  JobSpec job = small_job();
  job.rounds = 1;  // three runs of it
  job.compression.uplink = "int8";
  job.compression.downlink = "int8";
  Collect collect;
  JobRunOptions options;
  options.listeners = {&collect};
  const JobResult a = run_simulation(job, options);
  const RoundSummary& s = collect.rounds.back();
  EXPECT_GT(s.metrics.at("compression_ratio_up"), 3.9);
  EXPECT_GT(s.metrics.at("compression_ratio_down"), 3.9);
  EXPECT_EQ(static_cast<double>(s.bytes_up), s.metrics.at("bytes_up"));
  EXPECT_GT(a.final_metrics.at("eval_accuracy"), 0.3);  // chance is 0.1
  const JobResult b = run_simulation(job, {});
  EXPECT_EQ(a.final_model->checkpoint_bytes(), b.final_model->checkpoint_bytes());
  // The lossy path is taken: without compression the model differs.
  job.compression = {};
  const JobResult plain = run_simulation(job, {});
  EXPECT_NE(a.final_model->checkpoint_bytes(), plain.final_model->checkpoint_bytes());
  EXPECT_EQ(plain.final_metrics.count("compression_ratio_up"), 0u);
}

// The network client's residual lives in its Site: a rejoin of the same job
// (after a reconnect or a server restart) keeps it, another job starts over.
TEST(CompressionNetworkClient, TheResidualSurvivesARejoinOfTheSameJobOnly) {
  net::Site site;
  net::Joined joined;
  joined.job_id = "job-a";
  joined.client = "alpha";
  joined.compression_uplink = "topk";
  net::adopt_compression(site, joined);
  ASSERT_TRUE(site.compression && site.residual);
  EXPECT_EQ(site.compression->uplink, compression::Codec::kTopk);
  const std::vector<float> update = {1.0f, 0.5f, 0.25f};
  site.residual->encode({{update.data(), update.size()}}, {compression::Codec::kTopk, 0.3});
  const auto kept = site.residual;
  EXPECT_EQ(kept->values().at(0), (std::vector<float>{0.0f, 0.5f, 0.25f}));
  net::adopt_compression(site, joined);  // rejoined after a reconnect
  EXPECT_EQ(site.residual, kept);
  EXPECT_EQ(site.residual->values().at(0), (std::vector<float>{0.0f, 0.5f, 0.25f}));
  joined.job_id = "job-b";
  net::adopt_compression(site, joined);
  EXPECT_NE(site.residual, kept);
  EXPECT_TRUE(site.residual->values().empty());
  joined.compression_uplink = "none";
  net::adopt_compression(site, joined);
  EXPECT_FALSE(site.compression);
}

}  // namespace
}  // namespace fedtrack
