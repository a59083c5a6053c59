// The promotion decision (connectors/src/promotion.h): the best round, the
// gates, the alias holder; the rounds and the holder come from an in-process
// fake MLflow server through the real client.
#include "promotion.h"

#include <gtest/gtest.h>

#include <cmath>

#include "fake_mlflow.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

using testing::FakeMlflow;
using testing::FakeRun;

class Promotion : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = testing::fake_mlflow_client(fake_);
  }

  // A round run of job "job" (run "parent") with lineage and metrics.
  void add_round(const std::string& id, int round, const std::map<std::string, double>& metrics,
                 bool with_lineage = true) {
    FakeRun run;
    run.id = id;
    run.experiment_id = "0";
    run.name = "round-00" + std::to_string(round);
    run.start_time = round;
    run.tags = {{"mlflow.parentRunId", "parent"}, {"fedtrack.job_id", "job"}, {"fedtrack.round", std::to_string(round)}};
    if (with_lineage) {
      run.tags["fedtrack.git.commit"] = "commit-" + id;
      run.tags["fedtrack.dvc.md5"] = "md5-" + id;
    }
    for (const auto& [k, v] : metrics) {
      nlohmann::json value = std::isnan(v) ? nlohmann::json("NaN") : nlohmann::json(v);
      run.metrics.push_back({{"key", k}, {"value", value}, {"timestamp", 1}, {"step", round}});
    }
    fake_->runs[id] = run;
  }

  // The job's rounds as promote reads them: through the client's search.
  std::vector<MlflowRun> rounds() {
    return client_->search_runs({"0"}, "tags.mlflow.parentRunId = 'parent'", {"attributes.start_time ASC"});
  }

  // A holder of alias "champion" on model "m" whose run has `metric`.
  void add_holder(const std::string& version, std::optional<double> value) {
    add_round("holder-run", 9, value ? std::map<std::string, double>{{"eval_accuracy", *value}}
                                     : std::map<std::string, double>{});
    fake_->runs.at("holder-run").tags.erase("mlflow.parentRunId");  // another job's round
    fake_->aliases[{"m", "champion"}] = {version, "holder-run"};
  }

  PromotionDecision decide(const PromotionCriteria& criteria) {
    std::optional<AliasHolder> holder;
    if (!criteria.holder_alias.empty()) holder = current_holder(*client_, "m", criteria.holder_alias, criteria.metric);
    return decide_promotion(rounds(), "run parent", criteria, holder);
  }

  FakeMlflow* fake_ = nullptr;
  std::unique_ptr<MlflowClient> client_;
};

TEST_F(Promotion, TheBestRoundByMetricAndMode) {
  add_round("r1", 1, {{"eval_accuracy", 0.6}, {"eval_loss", 0.9}});
  add_round("r2", 2, {{"eval_accuracy", 0.8}, {"eval_loss", 0.4}});
  add_round("r3", 3, {{"eval_accuracy", 0.7}, {"eval_loss", 0.2}});
  PromotionCriteria max;
  const PromotionDecision best = decide(max);
  EXPECT_EQ(best.candidate.info.run_id, "r2");
  EXPECT_DOUBLE_EQ(best.value, 0.8);
  EXPECT_EQ(best.lineage.commit, "commit-r2");
  EXPECT_EQ(best.lineage.round, 2);
  EXPECT_TRUE(best.promote());
  PromotionCriteria min;
  min.metric = "eval_loss";
  min.mode = "min";
  EXPECT_EQ(decide(min).candidate.info.run_id, "r3");
}

TEST_F(Promotion, ATieKeepsTheEarliestRound) {
  add_round("r1", 1, {{"eval_accuracy", 0.8}});
  add_round("r2", 2, {{"eval_accuracy", 0.8}});
  EXPECT_EQ(decide({}).candidate.info.run_id, "r1");
  PromotionCriteria min;
  min.mode = "min";
  EXPECT_EQ(decide(min).candidate.info.run_id, "r1");
}

TEST_F(Promotion, RoundsWithoutTheMetricOrWithNaNAreSkipped) {
  add_round("r1", 1, {{"eval_accuracy", std::nan("")}});
  add_round("r2", 2, {{"eval_loss", 0.1}});
  add_round("r3", 3, {{"eval_accuracy", 0.1}});
  EXPECT_EQ(decide({}).candidate.info.run_id, "r3");
}

TEST_F(Promotion, NoRoundWithTheMetricIsNotFound) {
  add_round("r1", 1, {{"eval_loss", 0.1}});
  try {
    decide({});
    FAIL() << "expected not found";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "no round of run parent has metric 'eval_accuracy'");
  }
}

TEST_F(Promotion, ABestRoundWithoutLineageIsAFailedPrecondition) {
  add_round("r1", 1, {{"eval_accuracy", 0.9}}, false);
  try {
    decide({});
    FAIL() << "expected failed precondition";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("round run r1 carries no versioning lineage"), std::string::npos);
  }
}

TEST_F(Promotion, EachGateOperatorPassesAndFails) {
  add_round("r1", 1, {{"eval_accuracy", 0.8}});
  const std::vector<std::pair<std::string, bool>> cases = {
      {"eval_accuracy>=0.8", true}, {"eval_accuracy>=0.81", false}, {"eval_accuracy<=0.8", true},
      {"eval_accuracy<=0.79", false}, {"eval_accuracy>0.79", true}, {"eval_accuracy>0.8", false},
      {"eval_accuracy<0.81", true}, {"eval_accuracy<0.8", false}, {"eval_accuracy==0.8", true},
      {"eval_accuracy == 0.7", false}, {"eval_accuracy>=nan", false}};
  for (const auto& [text, passes] : cases) {
    PromotionCriteria criteria;
    criteria.gates = {parse_gate(text)};
    const PromotionDecision d = decide(criteria);
    EXPECT_EQ(d.promote(), passes) << text;
    ASSERT_EQ(d.gate_values.size(), 1u) << text;
    EXPECT_EQ(d.gate_values[0].first, "eval_accuracy");
    if (!passes) {
      ASSERT_EQ(d.failed.size(), 1u) << text;
      EXPECT_EQ(d.failed[0], text + ": eval_accuracy is 0.8");
    }
  }
}

TEST_F(Promotion, AGateOnAMissingMetricFailsAndABadGateIsRejected) {
  add_round("r1", 1, {{"eval_accuracy", 0.8}});
  PromotionCriteria criteria;
  criteria.gates = {parse_gate("eval_loss<0.5"), parse_gate("eval_accuracy>0.5")};
  const PromotionDecision d = decide(criteria);
  EXPECT_FALSE(d.promote());
  EXPECT_EQ(d.failed, std::vector<std::string>{"eval_loss<0.5: the candidate has no metric 'eval_loss'"});
  EXPECT_EQ(d.gate_values.size(), 1u);  // only the metric the candidate has
  for (const std::string bad : {"eval_accuracy", "eval_accuracy=>0.5", ">=0.5", "eval_accuracy>=high"}) {
    try {
      parse_gate(bad);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST_F(Promotion, TheChallengerMustBeatTheAliasHolder) {
  add_round("r1", 1, {{"eval_accuracy", 0.8}});
  PromotionCriteria criteria;
  criteria.holder_alias = "champion";
  for (const auto& [held, beaten] : std::vector<std::pair<double, bool>>{{0.7, true}, {0.9, false}, {0.8, false}}) {
    add_holder("4", held);
    const PromotionDecision d = decide(criteria);
    ASSERT_TRUE(d.holder) << held;
    EXPECT_EQ(d.holder->version, "4");
    EXPECT_DOUBLE_EQ(*d.holder->value, held);
    EXPECT_EQ(d.promote(), beaten) << held;
    if (!beaten) {
      ASSERT_EQ(d.failed.size(), 1u);
      EXPECT_EQ(d.failed[0], "--better-than champion: eval_accuracy 0.8 does not beat champion's " +
                                 promotion_number(held) + " (version 4)");
    }
  }
  criteria.mode = "min";  // lower is better: 0.8 beats 0.9
  add_holder("5", 0.9);
  EXPECT_TRUE(decide(criteria).promote());
}

TEST_F(Promotion, NoHolderOrAHolderWithoutTheMetricIsNothingToBeat) {
  add_round("r1", 1, {{"eval_accuracy", 0.8}});
  PromotionCriteria criteria;
  criteria.holder_alias = "champion";
  EXPECT_FALSE(current_holder(*client_, "m", "champion", "eval_accuracy"));  // the alias does not exist
  PromotionDecision d = decide(criteria);
  EXPECT_TRUE(d.promote());
  EXPECT_FALSE(d.holder);
  add_holder("2", std::nullopt);
  const auto holder = current_holder(*client_, "m", "champion", "eval_accuracy");
  ASSERT_TRUE(holder);
  EXPECT_EQ(holder->run_id, "holder-run");
  EXPECT_FALSE(holder->value);
  d = decide(criteria);
  EXPECT_TRUE(d.promote());
  EXPECT_FALSE(d.holder);
}

TEST(PromotionNumber, PrintsSixSignificantDigits) {
  EXPECT_EQ(promotion_number(0.8), "0.8");
  EXPECT_EQ(promotion_number(0.123456789), "0.123457");
  EXPECT_EQ(promotion_number(1e-05), "1e-05");
}

}  // namespace
}  // namespace fedtrack
