#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "fake_mlflow.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {
namespace {

using testing::FakeMlflow;

struct ClientUnderTest {
  FakeMlflow* fake;
  std::vector<double> sleeps;
  std::unique_ptr<MlflowClient> client;
};

std::unique_ptr<ClientUnderTest> make_client(MlflowConfig config = {}) {
  auto t = std::make_unique<ClientUnderTest>();
  auto fake = std::make_unique<FakeMlflow>();
  t->fake = fake.get();
  if (config.tracking_uri.empty()) config.tracking_uri = "http://127.0.0.1:1/";
  config.backoff_jitter = 0;
  auto* sleeps = &t->sleeps;
  t->client = std::make_unique<MlflowClient>(config, std::move(fake), [sleeps](double s) { sleeps->push_back(s); });
  return t;
}

TEST(LogBatchSplit, StaysWithinEveryLimitAndKeepsOrder) {
  LogBatch all;
  for (int i = 0; i < 250; ++i) all.params.push_back({"p" + std::to_string(i), "v"});
  for (int i = 0; i < 150; ++i) all.tags.push_back({"t" + std::to_string(i), "v"});
  for (int i = 0; i < 2500; ++i) all.metrics.push_back({"m", double(i), 1, i});
  const auto parts = split_log_batch(all);
  std::size_t params = 0, tags = 0, metrics = 0;
  int last_step = -1;
  for (const auto& p : parts) {
    EXPECT_LE(p.params.size(), 100u);
    EXPECT_LE(p.tags.size(), 100u);
    EXPECT_LE(p.metrics.size(), 1000u);
    EXPECT_LE(p.size(), 1000u);
    params += p.params.size();
    tags += p.tags.size();
    for (const auto& m : p.metrics) {
      EXPECT_EQ(m.step, last_step + 1);
      last_step = static_cast<int>(m.step);
    }
    metrics += p.metrics.size();
  }
  EXPECT_EQ(params, 250u);
  EXPECT_EQ(tags, 150u);
  EXPECT_EQ(metrics, 2500u);
  EXPECT_EQ(parts.front().params.front().key, "p0");
  EXPECT_LE(parts.size(), 6u);  // 250 params alone need 3; not one request per entity
}

TEST(LogBatchSplit, RespectsTheRequestSizeLimit) {
  LogBatch all;
  for (int i = 0; i < 5; ++i) all.tags.push_back({"big" + std::to_string(i), std::string(300000, 'x')});
  const auto parts = split_log_batch(all);
  ASSERT_EQ(parts.size(), 2u);  // 3 x 300 kB fit under 1 MB, the other 2 go next
  EXPECT_EQ(parts[0].tags.size(), 3u);
}

TEST(SanitizeKey, KeepsValidKeysAndRepairsOthers) {
  EXPECT_EQ(sanitize_key("client/client-003/train_loss"), "client/client-003/train_loss");
  EXPECT_EQ(sanitize_key("a b:c.d-e_f"), "a b:c.d-e_f");
  EXPECT_EQ(sanitize_key("loss[0]@x"), "loss_0__x");
  EXPECT_EQ(sanitize_key("/lead//double/"), "lead/double");
  EXPECT_EQ(sanitize_key("a/../b"), "a/__/b");
  EXPECT_EQ(sanitize_key("caf\xc3\xa9"), "caf__");
  EXPECT_EQ(sanitize_key(std::string(400, 'k')).size(), 250u);
}

TEST(MlflowClient, RetriesRetryableStatusesWithExponentialBackoff) {
  auto t = make_client();
  t->fake->script = {503, 502, 0};
  EXPECT_EQ(t->client->create_experiment("x"), "1");
  ASSERT_EQ(t->fake->requests.size(), 3u);
  EXPECT_EQ(t->sleeps, (std::vector<double>{2.0, 4.0}));
}

TEST(MlflowClient, HonoursRetryAfter) {
  // A 429 whose Retry-After asks for longer than the backoff.
  struct RetryAfter : HttpTransport {
    int calls = 0;
    HttpResponse send(const HttpRequest&) override {
      if (calls++ == 0) return {429, "{}", {{"retry-after", "7"}}};
      return {200, R"({"experiment_id": "5"})", {}};
    }
  };
  std::vector<double> sleeps;
  MlflowConfig config;
  config.tracking_uri = "http://127.0.0.1:1";
  config.backoff_jitter = 0;
  MlflowClient client(config, std::make_unique<RetryAfter>(), [&](double s) { sleeps.push_back(s); });
  EXPECT_EQ(client.create_experiment("x"), "5");
  EXPECT_EQ(sleeps, (std::vector<double>{7.0}));
}

TEST(MlflowClient, GivesUpAfterMaxRetriesOnConnectionErrors) {
  MlflowConfig config;
  config.max_retries = 2;
  auto t = make_client(config);
  t->fake->script = {-1, -1, -1, -1};
  try {
    t->client->get_experiment_by_name("x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
  EXPECT_EQ(t->fake->requests.size(), 3u);
}

TEST(MlflowClient, NeverWaitsPastTheDeadline) {
  auto t = make_client();
  t->fake->script = {-1, -1};
  t->client->set_deadline(MlflowClient::Clock::now() + std::chrono::milliseconds(500));
  EXPECT_THROW(t->client->get_experiment_by_name("x"), Error);
  EXPECT_EQ(t->fake->requests.size(), 1u);  // a 2 s backoff would overrun: no retry
  EXPECT_TRUE(t->sleeps.empty());
  EXPECT_LE(t->fake->requests[0].timeout_seconds, 0.5);
}

TEST(MlflowClient, ErrorsNameMlflowsCodeAndMessage) {
  struct BadRequest : HttpTransport {
    HttpResponse send(const HttpRequest&) override {
      return {400, R"({"error_code": "INVALID_PARAMETER_VALUE", "message": "Param train.lr was already logged"})", {}};
    }
  };
  MlflowConfig config;
  config.tracking_uri = "http://127.0.0.1:1";
  MlflowClient client(config, std::make_unique<BadRequest>(), [](double) { FAIL() << "no retry for a 400"; });
  try {
    client.set_tag("r", "k", "v");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()),
              "MLflow INVALID_PARAMETER_VALUE: Param train.lr was already logged "
              "(POST http://127.0.0.1:1/api/2.0/mlflow/runs/set-tag)");
  }
}

TEST(MlflowClient, SendsNonFiniteMetricsAsMlflowStrings) {
  auto t = make_client();
  t->fake->runs["r"] = {};
  LogBatch batch;
  batch.metrics = {{"a", std::nan(""), 1, 0}, {"b", INFINITY, 1, 0}, {"c", -INFINITY, 1, 0}, {"d", 0.5, 1, 0}};
  t->client->log_batch("r", batch);
  const auto body = nlohmann::json::parse(t->fake->requests.back().body);
  EXPECT_EQ(body["metrics"][0]["value"], "NaN");
  EXPECT_EQ(body["metrics"][1]["value"], "Infinity");
  EXPECT_EQ(body["metrics"][2]["value"], "-Infinity");
  EXPECT_EQ(body["metrics"][3]["value"], 0.5);
}

TEST(MlflowClient, AuthenticatesLikeThePythonClient) {
  MlflowConfig basic;
  basic.username = "alice";
  basic.password = "s3cret";
  auto t = make_client(basic);
  t->client->get_experiment_by_name("Default");
  const auto& headers = t->fake->requests.back().headers;
  EXPECT_NE(std::find(headers.begin(), headers.end(), std::make_pair(std::string("Authorization"),
                                                                      std::string("Basic YWxpY2U6czNjcmV0"))),
            headers.end());
  MlflowConfig bearer;
  bearer.token = "tok";
  auto u = make_client(bearer);
  u->client->get_experiment_by_name("Default");
  const auto& h2 = u->fake->requests.back().headers;
  EXPECT_NE(std::find(h2.begin(), h2.end(), std::make_pair(std::string("Authorization"), std::string("Bearer tok"))),
            h2.end());
}

TEST(MlflowClient, RejectsNonHttpUris) {
  MlflowConfig config;
  config.tracking_uri = "file:///tmp/mlruns";
  EXPECT_THROW(MlflowClient(config, std::make_unique<FakeMlflow>()), Error);
}

// A job's own tracking section wins; what it leaves empty comes from the
// Python client's variables, exactly as given (the job's params log it).
TEST(MlflowConfig, ResolvesWhatTheJobLeavesEmptyFromTheEnvironment) {
  setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999/", 1);
  setenv("MLFLOW_EXPERIMENT_NAME", "from-env", 1);
  EXPECT_EQ(MlflowConfig::resolve_tracking_uri(""), "http://127.0.0.1:5999/");
  EXPECT_EQ(MlflowConfig::resolve_tracking_uri("http://127.0.0.1:1"), "http://127.0.0.1:1");
  EXPECT_EQ(MlflowConfig::resolve_experiment(""), "from-env");
  EXPECT_EQ(MlflowConfig::resolve_experiment("mine"), "mine");
  EXPECT_EQ(MlflowConfig::from_environment("").tracking_uri, "http://127.0.0.1:5999");
  setenv("MLFLOW_EXPERIMENT_NAME", "", 1);
  EXPECT_EQ(MlflowConfig::resolve_experiment(""), "Default");
  unsetenv("MLFLOW_TRACKING_URI");
  unsetenv("MLFLOW_EXPERIMENT_NAME");
  EXPECT_EQ(MlflowConfig::resolve_tracking_uri(""), "");
  EXPECT_EQ(MlflowConfig::resolve_experiment(""), "Default");
}

}  // namespace
}  // namespace fedtrack
