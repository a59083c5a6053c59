// The job schema table drives parsing, --set, the params and the digest:
// every key is checked here by iterating the table, so a key added to the
// table is tested without touching this file.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "fedtrack/connectors/job_config.h"
#include "fedtrack/connectors/job_schema.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/number_text.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/strategy_registry.h"

namespace fedtrack {
namespace {

std::map<std::string, std::string> params_of(const JobSpec& job) {
  const auto flat = flatten_job(job);
  return {flat.begin(), flat.end()};
}

// Keys a row needs set beside it to be valid (and, for attack.scale, to matter).
std::vector<std::string> context_for(const JobKey& row) {
  const std::string& k = row.key;
  if (k == "data.classes") return {"data.dataset=csv", "data.path=a.csv"};
  if (k == "attack.scale") return {"attack.clients=1"};
  if (k == "privacy.dp.target_clipped_quantile" || k == "privacy.dp.clip_norm_lr" ||
      k == "privacy.dp.clipped_count_stddev") {
    return {"privacy.dp.mode=server_adaptive", "privacy.dp.noise_multiplier=0.1"};
  }
  if (k.rfind("privacy.dp.", 0) == 0 && k != "privacy.dp.mode") return {"privacy.dp.mode=server_fixed"};
  if (k.rfind("secure_aggregation.", 0) == 0 && k != "secure_aggregation.mode") {
    return {"secure_aggregation.mode=secaggplus"};
  }
  if (k == "compression.topk_fraction" || k == "compression.error_feedback") return {"compression.uplink=topk"};
  if (k.rfind("strategy.", 0) == 0 && row.listed == Listed::kWhenSet) {
    const std::string option = k.substr(9);
    for (const auto& info : strategy_registry()) {
      if (info.option(option) == nullptr) continue;
      std::vector<std::string> out = {std::string("strategy.name=") + info.name};
      for (const auto& o : info.options) {
        if (!o.flower_default) out.push_back(std::string("strategy.") + o.key + "=1");  // required
      }
      return out;
    }
  }
  return {};
}

// A valid value that differs from what `base` holds, as --set text (which
// is also the text the params must show).
std::string other_value(const JobKey& row, const JobSpec& base) {
  const std::string now = job_key_text(row, base);
  switch (row.kind) {
    case KeyKind::kString:
      if (row.key == "tracking.uri") return "http://127.0.0.1:5000";
      if (row.key == "versioning.author") return "Ada <ada@example.org>";
      if (row.key == "versioning.artifact") return "fashion-mlp";
      return now + "x.y";
    case KeyKind::kChoice:
      for (const auto& c : row.choices) {
        if (c != now) return c;
      }
      break;
    case KeyKind::kInteger: {
      if (row.key == "secure_aggregation.modulus_range") return "2147483648";  // another power of two
      const std::int64_t v = now.empty() ? row.int_lo : std::stoll(now);
      return std::to_string(v < row.int_hi ? v + 1 : v - 1);
    }
    case KeyKind::kNumber:
      for (const char* candidate : {"0.25", "0.3", "2.5", "600", "1e-05"}) {
        const double v = std::stod(candidate);
        const bool in_range = (row.lo_open ? v > row.lo : v >= row.lo) && v <= row.hi;
        if (in_range && candidate != now) return candidate;
      }
      break;
    case KeyKind::kBoolean:
      return now == "true" ? "false" : "true";
    case KeyKind::kClassList:
      return "[no, yes]";
    case KeyKind::kChoiceList:
      return now.empty() ? "[" + row.choices.back() + ", " + row.choices.front() + "]" : "[]";
  }
  ADD_FAILURE() << row.key << ": no other valid value";
  return now;
}

TEST(JobSchema, EveryKeyRoundTripsThroughSetParamsAndDigest) {
  ASSERT_GT(job_keys().size(), 60u);
  for (const JobKey& row : job_keys()) {
    SCOPED_TRACE(row.key);
    const std::vector<std::string> context = context_for(row);
    const JobSpec base = parse_job("", "job.yaml", context);
    const std::string value = other_value(row, base);
    std::vector<std::string> overrides = context;
    overrides.push_back(row.key + "=" + value);
    const JobSpec job = parse_job("", "job.yaml", overrides);

    // It lands in the JobSpec member the row binds, blamed on --set.
    std::string expected = row.kind == KeyKind::kClassList ? "no,yes" : value;
    if (row.kind == KeyKind::kChoiceList) expected = row.choices.back() + "," + row.choices.front();
    EXPECT_EQ(job_key_text(row, job), expected);
    EXPECT_NE(job_key_text(row, base), expected);
    EXPECT_EQ(job.sources.at(row.key), "--set");
    // The params show it as written.
    const auto params = params_of(job);
    ASSERT_EQ(params.count(row.key), 1u);
    EXPECT_EQ(params.at(row.key), expected);
    // It makes a different job exactly when it is not operational.
    if (row.digest == InDigest::kNo) {
      EXPECT_EQ(job_digest(job), job_digest(base));
    } else {
      EXPECT_NE(job_digest(job), job_digest(base));
    }
  }
}

TEST(JobSchema, ParamsListEveryKeyTheJobHas) {
  // Once missing from the params: the server and versioning keys, and the
  // attack when off. round_timeout was "6e+02".
  const auto params = params_of(parse_job("", "job.yaml"));
  EXPECT_EQ(params.at("server.state"), "");
  EXPECT_EQ(params.at("server.max_message_mb"), "1024");
  EXPECT_EQ(params.at("server.linger"), "3");
  EXPECT_EQ(params.at("server.round_timeout"), "600");
  EXPECT_EQ(params.at("server.client_timeout"), "30");
  EXPECT_EQ(params.at("versioning.author"), "");
  EXPECT_EQ(params.at("attack.clients"), "0");
  EXPECT_EQ(params.at("attack.scale"), "-4");
  for (const JobKey& row : job_keys()) {
    if (row.listed == Listed::kAlways) {
      EXPECT_EQ(params.count(row.key), 1u) << row.key;
    }
  }
}

TEST(JobSchema, NumbersPrintAsTheShortestExactDecimal) {
  EXPECT_EQ(number_text(600), "600");
  EXPECT_EQ(number_text(3600), "3600");
  EXPECT_EQ(number_text(-10), "-10");
  EXPECT_EQ(number_text(0.05), "0.05");
  EXPECT_EQ(number_text(0.0001), "0.0001");
  EXPECT_EQ(number_text(0.00001), "1e-05");
  EXPECT_EQ(number_text(1e7), "1e+07");
  EXPECT_EQ(number_text(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(number_text(2.5), "2.5");
  EXPECT_EQ(number_text(0), "0");
  const auto params = params_of(parse_job("train: {lr: 0.0001}\ndata: {partition: {alpha: 100}}\n", "job.yaml",
                                          {"server.round_timeout=1200"}));
  EXPECT_EQ(params.at("train.lr"), "0.0001");
  EXPECT_EQ(params.at("data.partition.alpha"), "100");
  EXPECT_EQ(params.at("server.round_timeout"), "1200");
}

// Digests computed by fedtrack before the schema table: a job keeps its
// digest, so its resume state still belongs to it.
TEST(JobSchema, ExistingJobsKeepTheirDigest) {
  const std::pair<const char*, const char*> jobs[] = {
      {"", "670a0bd1290236129771620f88b89aa14b70d182aaa71be3b466c1cb05022b84"},
      {"data: {partition: {kind: dirichlet, alpha: 100}}\ntrain: {lr: 0.0001, weight_decay: 10}\n",
       "98a127cd5a94d639448477408fbec6d09bbe36bfa64625be4fbd6de5d0994d59"},
      {"attack: {clients: 2, scale: -10}\n", "38c05f38eab8ccd0c0678eeafa2d362a0c03f98219160fcee497025a8cdf077d"},
      {"clients: {count: 40}\nprivacy:\n  dp: {mode: client_adaptive, noise_multiplier: 1.0, "
       "target_clipped_quantile: 0.3, clip_norm_lr: 0.1}\n",
       "e5b26649a6e13a37145f4ca68ad6ba5e2d8151d2838b24c38e0850e3e8ca323b"},
      {"strategy: {name: fedadam, eta: 0.05, tau: 0.001}\n",
       "a68311081928e2907965ea16f42cf866d7fd0f715bc3bab3d4ae4a62fe3ba2b2"},
      {"data: {dataset: csv, path: a.csv, classes: [no, yes]}\n",
       "00780a19154deaeee1ebe3812d4ecde1c7dca713b178ccaa1b8a9c9f4f506c53"},
      {"strategy: {name: multikrum, num_malicious_clients: 1, num_clients_to_keep: 3}\nserver: {round_timeout: 600}\n",
       "613b949f5d10ca2837474017780f44921327f415892f96cc28282eca2a9eb5e8"},
  };
  for (const auto& [yaml, digest] : jobs) EXPECT_EQ(job_digest(parse_job(yaml, "job.yaml")), digest) << yaml;
  // The keys that joined the params are operational, or (attack.*) only count when an attack is on.
  EXPECT_EQ(job_digest(parse_job("server: {state: s.db, linger: 1, max_message_mb: 8}\n"
                                 "versioning: {author: 'A <a@b.c>'}\nattack: {scale: -2}\n",
                                 "job.yaml")),
            jobs[0].second);
}

TEST(JobSchema, ReaderAndFactoryShareTheStrategyRegistry) {
  // Every registered strategy is a valid strategy.name, and every option the
  // registry gives it is accepted for it and refused for a strategy without it.
  for (const auto& info : strategy_registry()) {
    SCOPED_TRACE(info.name);
    std::vector<std::string> overrides = {std::string("strategy.name=") + info.name};
    auto value_of = [](const std::string& key) {
      return find_job_key("strategy." + key)->kind == KeyKind::kInteger ? 1.0 : 0.25;
    };
    for (const auto& o : info.options) {
      overrides.push_back(std::string("strategy.") + o.key + "=" + number_text(value_of(o.key)));
    }
    const JobSpec job = parse_job("", "job.yaml", overrides);
    EXPECT_EQ(job.strategy.name, info.name);
    for (const auto& o : info.options) {
      EXPECT_EQ(strategy_option(info, job.strategy, o.key), value_of(o.key));
      if (o.flower_default) {
        EXPECT_EQ(strategy_option(info, StrategySpec{}, o.key), *o.flower_default) << "unset " << o.key;
      } else {
        EXPECT_THROW(strategy_option(info, StrategySpec{}, o.key), Error) << "unset required " << o.key;
      }
    }
  }
  EXPECT_EQ(params_of(parse_job("strategy: {name: fedyogi}\n", "job.yaml")).count("strategy.eta"), 0u);
  // A required option is required in the shorthand too (it silently ran with mu = 0).
  try {
    parse_job("rounds: 2\nstrategy: fedprox\n", "job.yaml");
    ADD_FAILURE() << "strategy: fedprox without proximal_mu was accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "job.yaml:2: strategy.proximal_mu: is required by fedprox");
  }
}

TEST(JobSchema, DocsJobFileIsGeneratedFromTheTable) {
  const std::string path = std::string(FEDTRACK_SOURCE_DIR) + "/docs/job-file.md";
  std::ifstream in(path, std::ios::binary);
  std::ostringstream committed;
  committed << in.rdbuf();
  EXPECT_TRUE(committed.str() == job_file_markdown())
      << path << " differs from what the job schema generates; regenerate it with "
      << "`cmake --build build --target job-file-doc` and commit it";
  for (const JobKey& row : job_keys()) {
    EXPECT_NE(committed.str().find("| `" + row.key + "` |"), std::string::npos) << row.key;
  }
}

}  // namespace
}  // namespace fedtrack
