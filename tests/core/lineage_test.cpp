// Lineage: the run tags and commit trailers that link a round's MLflow run
// and its git commit. The formats are frozen: the fixtures below are what
// fedtrack before Lineage wrote, byte for byte.
#include "fedtrack/core/lineage.h"

#include <gtest/gtest.h>

namespace fedtrack {
namespace {

// A round commit message as ModelRepository::commit_round wrote it (the
// summary line, a blank line, the four round trailers, then the links).
const char* const kRecordedMessage =
    "demo round 2/3: eval_accuracy=0.7000\n"
    "\n"
    "fedtrack-job: job-1\n"
    "fedtrack-round: 2\n"
    "fedtrack-md5: 0123456789abcdef0123456789abcdef\n"
    "fedtrack-path: models/global.pt\n"
    "fedtrack-run-key: job-1/round-002\n"
    "mlflow-run-id: 4f1c2d\n"
    "mlflow-tracking-uri: http://127.0.0.1:5000\n";

// A round run's tags as the job recorder and the tracking listener set them.
const std::map<std::string, std::string> kRecordedTags = {
    {"fedtrack.job_id", "job-1"},
    {"fedtrack.round", "2"},
    {"fedtrack.git.commit", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"},
    {"fedtrack.git.tag", "fedtrack/job-1/round-002"},
    {"fedtrack.dvc.md5", "0123456789abcdef0123456789abcdef"},
    {"fedtrack.dvc.path", "models/global.pt"},
    {"fedtrack.dvc.repo", "/srv/models"},
    {"fedtrack.model_sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    {"mlflow.user", "alice"},
    {"mlflow.parentRunId", "77"}};

TEST(Lineage, ReadsACommitMessageAsWrittenBefore) {
  const Lineage l = Lineage::from_commit_message(kRecordedMessage);
  EXPECT_EQ(l.job_id, "job-1");
  EXPECT_EQ(l.round, 2);
  EXPECT_EQ(l.md5, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(l.path, "models/global.pt");
  EXPECT_EQ(l.run_key, "job-1/round-002");
  EXPECT_EQ(l.run_id, "4f1c2d");
  EXPECT_EQ(l.tracking_uri, "http://127.0.0.1:5000");
  EXPECT_TRUE(l.commit.empty());  // a commit does not name itself
}

TEST(Lineage, TrailersRoundTripByteForByte) {
  const Lineage l = Lineage::from_commit_message(kRecordedMessage);
  const std::string message(kRecordedMessage);
  EXPECT_EQ(l.to_trailers(), message.substr(message.find("\n\n") + 2));
  const Lineage again = Lineage::from_commit_message(l.to_trailers());
  EXPECT_EQ(again.to_trailers(), l.to_trailers());
}

TEST(Lineage, ASecurelyAggregatedRoundSaysSoInItsTrailersOnly) {
  Lineage l = Lineage::from_commit_message(kRecordedMessage);
  EXPECT_TRUE(l.aggregation.empty());  // a plain round's commit has no such line
  l.aggregation = "secaggplus";
  const std::string trailers = l.to_trailers();
  EXPECT_NE(trailers.find("\nfedtrack-aggregation: secaggplus\n"), std::string::npos) << trailers;
  EXPECT_EQ(Lineage::from_commit_message("summary\n\n" + trailers).aggregation, "secaggplus");
  for (const auto& [key, value] : l.to_run_tags()) EXPECT_NE(value, "secaggplus") << key;
}

TEST(Lineage, TheParentRunIdIsATrailerAfterTheRoundRunId) {
  Lineage l = Lineage::from_commit_message(kRecordedMessage);
  l.parent_run_id = "77";
  const std::string trailers = l.to_trailers();
  EXPECT_NE(trailers.find("mlflow-run-id: 4f1c2d\nmlflow-parent-run-id: 77\nmlflow-tracking-uri: "), std::string::npos)
      << trailers;
  EXPECT_EQ(Lineage::from_commit_message(trailers).parent_run_id, "77");
  EXPECT_TRUE(Lineage::from_commit_message(kRecordedMessage).parent_run_id.empty());  // older commits: none
}

TEST(Lineage, ReadsRunTagsAsWrittenBefore) {
  const Lineage l = Lineage::from_run_tags(kRecordedTags);
  EXPECT_EQ(l.job_id, "job-1");
  EXPECT_EQ(l.round, 2);
  EXPECT_EQ(l.commit, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
  EXPECT_EQ(l.tag, "fedtrack/job-1/round-002");
  EXPECT_EQ(l.md5, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(l.path, "models/global.pt");
  EXPECT_EQ(l.repo, "/srv/models");
  EXPECT_EQ(l.model_sha256, kRecordedTags.at("fedtrack.model_sha256"));
  EXPECT_TRUE(l.has_commit());
}

TEST(Lineage, RunTagsRoundTrip) {
  const Lineage l = Lineage::from_run_tags(kRecordedTags);
  std::map<std::string, std::string> written;
  for (const auto& [k, v] : l.to_run_tags()) written[k] = v;
  std::map<std::string, std::string> lineage_only = kRecordedTags;
  lineage_only.erase("mlflow.user");
  lineage_only.erase("mlflow.parentRunId");
  EXPECT_EQ(written, lineage_only);
}

TEST(Lineage, VersioningTagsKeepTheirOrder) {
  // What a round run gets after its commit, in the order it always had.
  Lineage l;
  l.commit = "c";
  l.tag = "t";
  l.md5 = "m";
  l.path = "p";
  l.repo = "/r";
  const Lineage::Tags expected = {{"fedtrack.git.commit", "c"},
                                  {"fedtrack.git.tag", "t"},
                                  {"fedtrack.dvc.md5", "m"},
                                  {"fedtrack.dvc.path", "p"},
                                  {"fedtrack.dvc.repo", "/r"}};
  EXPECT_EQ(l.to_run_tags(), expected);
}

TEST(Lineage, MissingAndUnreadableKeysLeaveFieldsEmpty) {
  const Lineage none = Lineage::from_run_tags({});
  EXPECT_TRUE(none.to_run_tags().empty());
  EXPECT_FALSE(none.has_commit());
  EXPECT_EQ(none.round, 0);
  EXPECT_TRUE(Lineage::from_commit_message("").to_trailers().empty());

  const Lineage partial = Lineage::from_run_tags({{"fedtrack.git.commit", "abc"}, {"fedtrack.round", "two"}});
  EXPECT_EQ(partial.commit, "abc");
  EXPECT_EQ(partial.round, 0);
  EXPECT_FALSE(partial.has_commit());  // no md5: a restore could not check the bytes

  // A commit message by hand: no trailers, or broken ones.
  const Lineage hand = Lineage::from_commit_message(
      "fix the readme\n\nfedtrack-round: 99999999999999999999\nfedtrack-job:no-space\nSigned-off-by: x\n");
  EXPECT_EQ(hand.round, 0);
  EXPECT_TRUE(hand.job_id.empty());
  EXPECT_TRUE(hand.to_trailers().empty());
}

TEST(Lineage, ModelVersionTagsWinOverTheRunsTags) {
  const Lineage l = Lineage::from_model_version(
      {{"fedtrack.git.commit", "from-version"}, {"fedtrack.dvc.path", "models/global.pt"}}, kRecordedTags);
  EXPECT_EQ(l.commit, "from-version");
  EXPECT_EQ(l.md5, "0123456789abcdef0123456789abcdef");  // the run's: the version has none
  EXPECT_EQ(l.job_id, "job-1");
  EXPECT_EQ(l.round, 2);
  EXPECT_TRUE(Lineage::from_model_version({}, {}).to_run_tags().empty());
}

TEST(Lineage, SecretsNeverTravel) {
  Lineage l;
  l.job_id = "job-1";
  l.round = 1;
  l.tracking_uri = "https://alice:s3cret@mlflow.example/?token=abc";
  l.repo = "https://bob:hunter2@git.example/models.git";
  const std::string trailers = l.to_trailers();
  EXPECT_EQ(trailers.find("s3cret"), std::string::npos) << trailers;
  EXPECT_EQ(trailers.find("abc"), std::string::npos) << trailers;
  std::string tags;
  for (const auto& [k, v] : l.to_run_tags()) tags += k + "=" + v + "\n";
  EXPECT_EQ(tags.find("hunter2"), std::string::npos) << tags;
  // ... nor come back from what an older or foreign writer left.
  const Lineage read = Lineage::from_commit_message("mlflow-tracking-uri: https://u:pw@h/\n");
  EXPECT_EQ(read.tracking_uri.find("pw"), std::string::npos) << read.tracking_uri;
  const Lineage tagged = Lineage::from_run_tags({{"fedtrack.dvc.repo", "https://u:pw@h/r.git"}});
  EXPECT_EQ(tagged.repo.find("pw"), std::string::npos) << tagged.repo;
}

TEST(Lineage, AValueCannotAddATrailer) {
  Lineage l;
  l.job_id = "job-1\nfedtrack-md5: forged";
  l.round = 1;
  l.md5 = "real";
  const Lineage read = Lineage::from_commit_message(l.to_trailers());
  EXPECT_EQ(read.md5, "real");
  EXPECT_EQ(read.job_id, "job-1 fedtrack-md5: forged");
}

}  // namespace
}  // namespace fedtrack
