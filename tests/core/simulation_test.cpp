#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/simulation.h"

namespace fedtrack {
namespace {

// A real 2-round federated job on a slice of Fashion-MNIST.
JobSpec small_job() {
  JobSpec job;
  job.name = "slice";
  job.seed = 7;
  job.rounds = 2;
  job.data.path = FEDTRACK_FASHION_MNIST_DIR;
  job.data.limit_train = 6000;
  job.data.limit_test = 1000;
  job.clients.count = 5;
  return job;
}

class Collect : public RoundListener {
 public:
  void on_round(const RoundSummary& s) override { rounds.push_back(s); }
  std::vector<RoundSummary> rounds;
};

TEST(Simulation, TwoRoundsOnASliceBeatChanceByAWideMargin) {
  Collect collect;
  JobRunOptions options;
  options.job_id = "t";
  options.listeners = {&collect};
  const JobResult r = run_simulation(small_job(), options);
  ASSERT_EQ(r.rounds.size(), 2u);
  EXPECT_EQ(r.rounds[0].first, 1);
  EXPECT_EQ(r.rounds[1].first, 2);
  // Ten classes: chance is 0.10.
  EXPECT_GT(r.final_metrics.at("eval_accuracy"), 0.45);
  EXPECT_LT(r.final_metrics.at("eval_loss"), r.initial->at("eval_loss"));
  ASSERT_EQ(collect.rounds.size(), 2u);
  const RoundSummary& s = collect.rounds[1];
  EXPECT_EQ(s.clients.size(), 5u);
  EXPECT_EQ(s.clients[0].client_id, "client-000");
  EXPECT_EQ(s.clients[0].data_fingerprint.size(), 64u);
  EXPECT_EQ(s.clients[0].data_fingerprint, r.client_fingerprints[0]);
  EXPECT_NE(r.client_fingerprints[0], r.client_fingerprints[1]);
  EXPECT_EQ(std::get<std::int64_t>(s.fit_config.at("round")), 2);
  EXPECT_GT(s.bytes_up, 0u);
  // The snapshot decodes to the model's layout.
  const Parameters final_params = decode_parameters(r.final_model->encoded_parameters());
  EXPECT_EQ(final_params.names.front(), "fc1.weight");
}

TEST(Simulation, SameJobAndSeedGiveIdenticalBytes) {
  JobRunOptions options;
  JobSpec job = small_job();
  job.rounds = 1;
  const JobResult a = run_simulation(job, options);
  const JobResult b = run_simulation(job, options);
  EXPECT_EQ(a.final_model->checkpoint_bytes(), b.final_model->checkpoint_bytes());
  EXPECT_EQ(a.final_metrics.at("eval_loss"), b.final_metrics.at("eval_loss"));
  job.seed = 8;
  const JobResult c = run_simulation(job, options);
  EXPECT_NE(a.final_model->checkpoint_bytes(), c.final_model->checkpoint_bytes());
}

TEST(Simulation, OneByzantineClientBreaksFedAvgButNotTheMedian) {
  JobSpec job = small_job();
  job.data.partition.kind = "iid";
  job.attack.clients = 1;  // client-000 sends global - 10 x its honest update
  job.attack.scale = -10;
  const double fedavg = run_simulation(job, {}).final_metrics.at("eval_accuracy");
  job.strategy.name = "fedmedian";
  const double median = run_simulation(job, {}).final_metrics.at("eval_accuracy");
  EXPECT_LT(fedavg, 0.3);
  EXPECT_GT(median, 0.6);
}

TEST(Simulation, UnknownModelNamesTheKey) {
  JobSpec job = small_job();
  job.model = "resnet9000";
  job.sources["model"] = "job.yaml:4";
  try {
    run_simulation(job, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "job.yaml:4: model: unknown model 'resnet9000' (known: cnn, mlp)");
  }
}

TEST(Simulation, CsvTabularJobTrains) {
  namespace fs = std::filesystem;
  const fs::path csv = fs::temp_directory_path() / ("fedtrack-sim-" + std::to_string(::getpid()) + ".csv");
  {
    // Two separable classes: label = x0 + x1 > 0.
    std::ofstream out(csv);
    out << "x0,x1,noise,label\n";
    std::mt19937 rng(1);
    std::normal_distribution<double> g;
    for (int i = 0; i < 600; ++i) {
      const double a = g(rng), b = g(rng);
      out << a << "," << b << "," << g(rng) << "," << (a + b > 0 ? "approve" : "deny") << "\n";
    }
  }
  JobSpec job;
  job.seed = 3;
  job.rounds = 3;
  job.data.dataset = "csv";
  job.data.path = csv.string();
  job.data.label = "label";
  job.data.partition.kind = "iid";
  job.clients.count = 3;
  job.train.lr = 0.1;
  const JobResult r = run_simulation(job, {});
  fs::remove(csv);
  EXPECT_GT(r.final_metrics.at("eval_accuracy"), 0.9);
}

}  // namespace
}  // namespace fedtrack
