// Secure aggregation in the simulation runtime (fedtrack run): the same
// protocol code in-process, on a slice of Fashion-MNIST.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "fedtrack/core/error.h"

#include "fedtrack/core/parameters.h"
#include "fedtrack/core/simulation.h"

namespace fedtrack {
namespace {

JobSpec slice_job() {
  JobSpec job;
  job.name = "secagg-slice";
  job.seed = 11;
  job.rounds = 1;
  job.data.path = FEDTRACK_FASHION_MNIST_DIR;
  job.data.limit_train = 3000;
  job.data.limit_test = 500;
  job.clients.count = 5;
  job.evaluation.federated = false;
  return job;
}

class Collect : public RoundListener {
 public:
  void on_round(const RoundSummary& s) override { rounds.push_back(s); }
  std::vector<RoundSummary> rounds;
};

TEST(SecAggSimulation, MatchesPlainFedAvgWithinTheQuantizationBoundAndIsDeterministic) {
  JobRunOptions options;
  const JobSpec plain_job = slice_job();
  JobSpec secure_job = slice_job();
  secure_job.secure_aggregation.mode = "secaggplus";
  secure_job.secure_aggregation.max_weight = 1000;
  Collect collect;
  options.listeners = {&collect};
  const JobResult secure = run_simulation(secure_job, options);
  options.listeners = {};
  const JobResult plain = run_simulation(plain_job, options);
  const JobResult again = run_simulation(secure_job, options);
  // Fresh keys and masks every run, the same sum: identical bytes.
  EXPECT_TRUE(secure.final_model->checkpoint_bytes() == again.final_model->checkpoint_bytes());
  const Parameters a = decode_parameters(secure.final_model->encoded_parameters());
  const Parameters b = decode_parameters(plain.final_model->encoded_parameters());
  // Each client's weighted value is off by < 1 step (2c/R) after rounding;
  // the weights (num_examples / max_weight, 5 clients of ~540) sum to ~2.7.
  const double step = 2 * 8.0 / 4194304.0;
  const double bound = 5 * step / 2.0 + 1e-6;
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a.tensors[i] - b.tensors[i]).abs().max().item<double>());
  EXPECT_LT(worst, bound);
  EXPECT_GT(worst, 0.0);  // it did go through quantization
  ASSERT_EQ(collect.rounds.size(), 1u);
  const Metrics& m = collect.rounds[0].metrics;
  EXPECT_EQ(m.at("secagg_dropouts"), 0.0);
  EXPECT_GT(m.at("secagg_bytes"), 4.0 * static_cast<double>(a.numel()) * 5);  // 5 masked uint32 vectors at least
  EXPECT_GT(m.at("secagg_seconds"), 0.0);
  EXPECT_EQ(m.at("clients_ok"), 5.0);
}

TEST(SecAggSimulation, AResumedJobRedoesTheProtocolAndEndsWithTheSameModel) {
  // Stopped after round 1 of 2, resumed: round 2's protocol runs again from
  // stage 0 with fresh keys and masks (nothing of the protocol persists), and
  // the final model is the uninterrupted run's, byte for byte.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-secagg-resume-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  JobSpec job = slice_job();
  job.rounds = 2;
  job.evaluation.initial = false;
  job.secure_aggregation.mode = "secaggplus";
  JobRunOptions straight;
  straight.state_path = (dir / "straight.db").string();
  const JobResult uninterrupted = run_simulation(job, straight);

  Collect collect;
  JobRunOptions first;
  first.state_path = (dir / "resumed.db").string();
  first.listeners = {&collect};
  first.stop_requested = [&collect] { return collect.rounds.size() >= 1; };
  try {
    run_simulation(job, first);
    ADD_FAILURE() << "the job was not stopped";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
  JobRunOptions second;
  second.state_path = first.state_path;
  second.resume = true;
  const JobResult resumed = run_simulation(job, second);
  EXPECT_EQ(resumed.resumed_after, 1);
  EXPECT_TRUE(resumed.final_model->checkpoint_bytes() == uninterrupted.final_model->checkpoint_bytes());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fedtrack
