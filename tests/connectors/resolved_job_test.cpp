// The resolved job file uploaded to the parent run: it reads back as the same
// job, and no secret of the job's URLs is in it.
#include <gtest/gtest.h>

#include "fedtrack/connectors/job_config.h"
#include "resolved_job.h"

namespace fedtrack {
namespace {

TEST(ResolvedJob, ReadsBackAsTheSameJob) {
  const JobSpec job = parse_job(
      "name: résumé-job\n"
      "data: {dataset: csv, path: a.csv, classes: [no, 'yes', '0'], partition: {kind: shard, classes_per_client: 2}}\n"
      "train: {lr: 0.01, optimizer: adam}\n"
      "privacy: {dp: {mode: server_fixed, noise_multiplier: 0.5, clipping_norm: 1.5}}\n"
      "versioning: {export: [onnx, onnx-int8]}\n",
      "job.yaml", {"rounds=7", "clients.count=5", "seed=4294967297"});
  const std::string yaml = resolved_job_yaml(job);
  const JobSpec again = parse_job(yaml, "job.yaml");
  EXPECT_EQ(flatten_job(again), flatten_job(job)) << yaml;
}

TEST(ResolvedJob, HoldsNoPasswordOrTokenOfTheJobsUrls) {
  const JobSpec job = parse_job(
      "tracking: {uri: 'http://alice:s3cr3t-pw@127.0.0.1:5000'}\n"
      "versioning: {remote: 'https://bob:other-pw@git.example/models.git?token=t0k3n'}\n",
      "job.yaml");
  const std::string yaml = resolved_job_yaml(job);
  for (const char* secret : {"s3cr3t-pw", "other-pw", "t0k3n", "alice", "bob"}) {
    EXPECT_EQ(yaml.find(secret), std::string::npos) << secret << " in\n" << yaml;
  }
  const JobSpec again = parse_job(yaml, "job.yaml");
  EXPECT_EQ(again.tracking.uri, "http://127.0.0.1:5000");
  EXPECT_EQ(again.versioning.remote.rfind("https://git.example/models.git?token=", 0), 0u) << again.versioning.remote;
}

}  // namespace
}  // namespace fedtrack
