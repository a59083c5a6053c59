#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "fedtrack/core/error.h"
#include "fedtrack/core/partition.h"

namespace fedtrack {
namespace {

// 10 balanced classes, shuffled, like a real labelled dataset.
std::vector<std::int64_t> balanced_labels(std::int64_t per_class, std::int64_t classes) {
  std::vector<std::int64_t> labels;
  for (std::int64_t c = 0; c < classes; ++c) labels.insert(labels.end(), per_class, c);
  std::mt19937_64 rng(7);
  std::shuffle(labels.begin(), labels.end(), rng);
  return labels;
}

void expect_exact_cover(const Partitions& parts, std::int64_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& p : parts) {
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (auto i : p) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "example " << i;
}

TEST(Partition, IidCoversEverythingOnceWithBalancedSizes) {
  const auto parts = partition_iid(1003, 10, 1);
  expect_exact_cover(parts, 1003);
  for (const auto& p : parts) {
    EXPECT_GE(p.size(), 100u);
    EXPECT_LE(p.size(), 101u);
  }
}

TEST(Partition, DirichletCoversEverythingOnce) {
  const auto labels = balanced_labels(500, 10);
  const auto parts = partition_dirichlet(labels, 10, 0.5, 10, 3);
  expect_exact_cover(parts, static_cast<std::int64_t>(labels.size()));
  for (const auto& p : parts) EXPECT_GE(p.size(), 10u);
}

TEST(Partition, DirichletSkewGrowsAsAlphaShrinks) {
  const auto labels = balanced_labels(600, 10);
  const double iid = label_skew(labels, partition_iid(static_cast<std::int64_t>(labels.size()), 10, 5));
  const double mild = label_skew(labels, partition_dirichlet(labels, 10, 100.0, 1, 5));
  const double medium = label_skew(labels, partition_dirichlet(labels, 10, 1.0, 1, 5));
  const double strong = label_skew(labels, partition_dirichlet(labels, 10, 0.1, 1, 5));
  EXPECT_LT(iid, 0.05);
  EXPECT_LT(mild, medium);
  EXPECT_LT(medium, strong);
  EXPECT_GT(strong, 0.5);
}

TEST(Partition, SameSeedSamePartitionsOtherSeedDifferent) {
  const auto labels = balanced_labels(200, 10);
  PartitionSpec spec;  // dirichlet 0.5
  EXPECT_EQ(partition(labels, 8, spec, 11), partition(labels, 8, spec, 11));
  EXPECT_NE(partition(labels, 8, spec, 11), partition(labels, 8, spec, 12));
  spec.kind = "shard";
  EXPECT_EQ(partition(labels, 8, spec, 11), partition(labels, 8, spec, 11));
  spec.kind = "iid";
  EXPECT_EQ(partition(labels, 8, spec, 11), partition(labels, 8, spec, 11));
}

TEST(Partition, ShardGivesEachClientFewClasses) {
  const auto labels = balanced_labels(300, 10);
  const auto parts = partition_shard(labels, 10, 2, 4);
  expect_exact_cover(parts, static_cast<std::int64_t>(labels.size()));
  for (const auto& p : parts) {
    std::set<std::int64_t> classes;
    for (auto i : p) classes.insert(labels[i]);
    // 3000 label-sorted examples in 20 shards of 150: each shard is one class.
    EXPECT_LE(classes.size(), 2u);
    EXPECT_EQ(p.size(), 300u);
  }
}

TEST(Partition, ImpossibleRequestsAreInvalidArguments) {
  const auto labels = balanced_labels(5, 2);
  EXPECT_THROW(partition_iid(3, 5, 1), Error);
  EXPECT_THROW(partition_dirichlet(labels, 2, 0.5, 6, 1), Error);
  EXPECT_THROW(partition_dirichlet(labels, 2, 0.0, 1, 1), Error);
  EXPECT_THROW(partition_shard(labels, 4, 3, 1), Error);
  PartitionSpec bad;
  bad.kind = "random";
  try {
    partition(labels, 2, bad, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "partition: unknown kind 'random' (expected iid, dirichlet or shard)");
  }
}

}  // namespace
}  // namespace fedtrack
