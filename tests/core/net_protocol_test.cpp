// The network protocol (core/src/net/protocol.h): every message survives its
// one encoder and one decoder unchanged, and every decoder refuses
// malformed input with Error(kCorruption) (the server's 400) naming the
// field, never a stray std exception.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "fedtrack/core/error.h"
#include "net/protocol.h"
#include "net/tokens.h"

namespace fedtrack::net {
namespace {

// Runs `decode` and expects Error(`code`) whose message contains `needle`.
template <typename Decode>
void expect_refused(Decode decode, const std::string& needle, ErrorCode code = ErrorCode::kCorruption) {
  try {
    decode();
    ADD_FAILURE() << "decoded; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an Error: " << e.what();
  }
}

Joined sample_joined() {
  Joined j;
  j.job_id = "loans-fedavg-20261201T010912Z-3cace1";
  j.job_name = "loans-fedavg";
  j.model = "mlp";
  j.format = "csv";
  j.feature_shape = {1, 28, 28};
  j.num_classes = 3;
  j.val_fraction = 0.15;
  j.scaling_mean = {0.1, -1e-300, 61234.5, 1.0 / 3};
  j.scaling_stddev = {1, 2.5e10, 0.30000000000000004, 7};
  j.classes = {"approve", "decline with review", ""};
  j.label = "decision";
  j.heartbeat_seconds = 1.5;
  j.max_message_mb = 64;
  j.poll_seconds = 2;
  j.client = "bank-a";
  j.session = "9f1c2d3e4b5a69788796a5b4c3d2e1f0";
  j.data_seed = 4611686018427387;
  return j;
}

TEST(NetProtocol, JoinedRoundTripsEveryFieldExactly) {
  const Joined in = sample_joined();
  const Joined out = decode_joined(encode_joined(in));
  EXPECT_EQ(out.job_id, in.job_id);
  EXPECT_EQ(out.job_name, in.job_name);
  EXPECT_EQ(out.model, in.model);
  EXPECT_EQ(out.format, in.format);
  EXPECT_EQ(out.feature_shape, in.feature_shape);
  EXPECT_EQ(out.num_classes, in.num_classes);
  EXPECT_EQ(out.val_fraction, in.val_fraction);
  EXPECT_EQ(out.scaling_mean, in.scaling_mean);  // bit for bit: %.17g
  EXPECT_EQ(out.scaling_stddev, in.scaling_stddev);
  EXPECT_EQ(out.classes, (std::vector<std::string>{"approve", "decline with review", ""}));
  EXPECT_EQ(out.label, in.label);
  EXPECT_EQ(out.heartbeat_seconds, in.heartbeat_seconds);
  EXPECT_EQ(out.max_message_mb, in.max_message_mb);
  EXPECT_EQ(out.poll_seconds, in.poll_seconds);
  EXPECT_EQ(out.client, in.client);
  EXPECT_EQ(out.session, in.session);
  EXPECT_EQ(out.data_seed, in.data_seed);
  // An image job: no classes, no label.
  Joined images = sample_joined();
  images.classes.clear();
  images.label.clear();
  EXPECT_TRUE(decode_joined(encode_joined(images)).classes.empty());
}

TEST(NetProtocol, JoinedRefusesMalformedAnswers) {
  auto with = [](const std::string& key, Scalar value) {
    Message m = decode_message(encode_joined(sample_joined()));
    m.header[key] = std::move(value);
    return encode_message(m);
  };
  expect_refused([&] { decode_joined(with("scaling_mean", std::string("0.5,abc"))); }, "scaling_mean");
  expect_refused([&] { decode_joined(with("scaling_stddev", std::string("1,,2"))); }, "scaling_stddev");
  expect_refused([&] { decode_joined(with("feature_shape", std::string("28x28"))); }, "feature_shape");
  expect_refused([&] { decode_joined(with("feature_shape", std::string("99999999999999999999"))); }, "feature_shape");
  expect_refused([&] { decode_joined(with("num_classes", std::string("ten"))); }, "'num_classes' must be an integer");
  expect_refused([&] { decode_joined(with("model", std::int64_t{7})); }, "'model' must be a string");
  expect_refused([&] { decode_joined(with("session", std::string())); }, "'session' is missing");
  Result failed;
  failed.kind = MessageKind::kTaskFailed;
  expect_refused([&] { decode_joined(encode_result(failed)); }, "expected joined");
  const std::string bytes = encode_joined(sample_joined());
  expect_refused([&] { decode_joined(bytes.substr(0, bytes.size() - 3)); }, "");
}

TEST(NetProtocol, TaskHeadRoundTripsWithConfigAndPayload) {
  TaskHead head;
  head.kind = MessageKind::kFitTask;
  head.job_id = "job-1";
  head.task_id = 42;
  head.round = 3;
  head.config = {{"round", std::int64_t{3}}, {"lr", 0.01}, {"proximal_mu", 0.5}, {"note", std::string("x y")},
                 {"flag", true}};
  const std::string payload = std::string("FTPM\0\x01 model bytes", 19);
  const TaskMessage out = decode_task(encode_task_head(head, payload.size()) + payload);
  EXPECT_EQ(out.head.kind, MessageKind::kFitTask);
  EXPECT_EQ(out.head.job_id, "job-1");
  EXPECT_EQ(out.head.task_id, 42);
  EXPECT_EQ(out.head.round, 3);
  EXPECT_EQ(out.head.config, head.config);
  EXPECT_EQ(out.payload, payload);

  for (MessageKind kind : {MessageKind::kWait, MessageKind::kDone}) {
    TaskHead idle;
    idle.kind = kind;
    idle.job_id = "job-1";
    idle.config = {{"ignored", 1.0}};
    const TaskMessage back = decode_task(encode_task_head(idle, 0));
    EXPECT_EQ(back.head.kind, kind);
    EXPECT_EQ(back.head.job_id, "job-1");
    EXPECT_TRUE(back.head.config.empty());
    EXPECT_TRUE(back.payload.empty());
  }
}

TEST(NetProtocol, TaskRefusesWhatIsNoPollAnswer) {
  expect_refused([] { decode_task(encode_joined(sample_joined())); }, "the server sent a joined as a task");
  ConfigRecord header = {{"job_id", std::string("j")}, {"task_id", std::string("one")}, {"round", std::int64_t{1}}};
  expect_refused([&] { decode_task(encode_message({MessageKind::kEvaluateTask, header, ""})); },
                 "'task_id' must be an integer");
  expect_refused([] { decode_task(std::string_view("FTMS")); }, "");
}

Result sample_fit() {
  Result r;
  r.kind = MessageKind::kFitResult;
  r.job_id = "job-1";
  r.task_id = 7;
  r.round = 2;
  r.num_examples = 600;
  r.train_seconds = 1.25;
  r.data_fingerprint = "0123456789abcdefABCDEF";
  r.metrics = {{"train_loss", 0.5}, {"accuracy", 0.875}, {"dp/clip norm:1", 3}};
  r.payload = "model";
  return r;
}

TEST(NetProtocol, ResultsRoundTripForEachKind) {
  const Result fit = decode_result(encode_result(sample_fit()));
  EXPECT_EQ(fit.kind, MessageKind::kFitResult);
  EXPECT_EQ(fit.job_id, "job-1");
  EXPECT_EQ(fit.task_id, 7);
  EXPECT_EQ(fit.round, 2);
  EXPECT_EQ(fit.num_examples, 600);
  EXPECT_EQ(fit.train_seconds, 1.25);
  EXPECT_EQ(fit.data_fingerprint, "0123456789abcdefABCDEF");
  EXPECT_EQ(fit.metrics, sample_fit().metrics);
  EXPECT_EQ(fit.payload, "model");

  Result evaluate = sample_fit();
  evaluate.kind = MessageKind::kEvaluateResult;
  evaluate.loss = 0.3125;
  const Result e = decode_result(encode_result(evaluate));
  EXPECT_EQ(e.kind, MessageKind::kEvaluateResult);
  EXPECT_EQ(e.loss, 0.3125);
  EXPECT_EQ(e.num_examples, 600);
  EXPECT_EQ(e.metrics, evaluate.metrics);
  EXPECT_TRUE(e.payload.empty());          // only a fit result carries a model
  EXPECT_TRUE(e.data_fingerprint.empty());  // and a fingerprint

  Result failed = sample_fit();
  failed.kind = MessageKind::kTaskFailed;
  failed.error = "CUDA out of memory";
  const Result f = decode_result(encode_result(failed));
  EXPECT_EQ(f.kind, MessageKind::kTaskFailed);
  EXPECT_EQ(f.error, "CUDA out of memory");
  EXPECT_EQ(f.task_id, 7);
  EXPECT_TRUE(f.payload.empty());
}

// A result header as a client could craft it.
std::string result_with(MessageKind kind, ConfigRecord extra, std::initializer_list<const char*> drop = {}) {
  ConfigRecord header = {{"job_id", std::string("job-1")}, {"task_id", std::int64_t{7}}, {"round", std::int64_t{2}},
                         {"num_examples", std::int64_t{10}}};
  if (kind == MessageKind::kEvaluateResult) header["loss"] = 0.5;
  for (auto& [k, v] : extra) header[k] = v;
  for (const char* k : drop) header.erase(k);
  return encode_message({kind, header, ""});
}

TEST(NetProtocol, ResultRefusesEachMalformedField) {
  const auto fit = MessageKind::kFitResult;
  const auto evaluate = MessageKind::kEvaluateResult;
  const auto failed = MessageKind::kTaskFailed;
  auto refused = [](const std::string& bytes, const std::string& needle) {
    expect_refused([&] { decode_result(bytes); }, needle);
  };
  refused(result_with(fit, {{"job_id", std::int64_t{1}}}), "a fit result: 'job_id' must be a string");
  refused(result_with(fit, {{"round", 2.0}}), "'round' must be an integer");
  refused(result_with(fit, {{"num_examples", std::string("10")}}), "'num_examples' must be an integer");
  refused(result_with(fit, {{"train_seconds", std::string("1")}}), "'train_seconds' must be a number");
  refused(result_with(evaluate, {{"loss", true}}), "'loss' must be a number");
  refused(result_with(fit, {{"data_fingerprint", std::string("xyz")}}), "'data_fingerprint' must be 1 to 128 hex digits");
  refused(result_with(fit, {{"data_fingerprint", std::string(129, 'a')}}), "hex digits");
  refused(result_with(fit, {{"data_fingerprint", std::string()}}), "hex digits");
  refused(result_with(fit, {{"metric/a\nb", 1.0}}), "is not a metric name");
  refused(result_with(fit, {{"metric/", 1.0}}), "is not a metric name");
  refused(result_with(fit, {{"metric/" + std::string(129, 'k'), 1.0}}), "is not a metric name");
  refused(result_with(fit, {{"metric/acc", std::string("high")}}), "'metric/acc' must be a number");
  refused(result_with(fit, {{"loss", 0.5}}), "'loss' is not a field of this message");
  refused(result_with(evaluate, {{"data_fingerprint", std::string("ab")}}), "is not a field of this message");
  refused(result_with(fit, {{"error", std::string("no")}}), "'error' is not a field");
  refused(result_with(fit, {{"surprise", 1.0}}), "'surprise' is not a field");
  refused(result_with(fit, {}, {"task_id"}), "'task_id' is missing");
  refused(result_with(fit, {}, {"num_examples"}), "'num_examples' is missing");
  refused(result_with(evaluate, {}, {"loss"}), "'loss' is missing");
  refused(result_with(failed, {{"error", std::int64_t{3}}}), "'error' must be a string");
  refused(encode_joined(sample_joined()), "a joined message is not a result");
  refused("not a message", "");

  ConfigRecord metrics;
  for (std::size_t i = 0; i <= kMaxResultMetrics; ++i) metrics["metric/m" + std::to_string(i)] = 1.0;
  refused(result_with(fit, metrics), "more than 64 metrics");
  metrics.erase(metrics.begin());
  EXPECT_EQ(decode_result(result_with(fit, metrics)).metrics.size(), kMaxResultMetrics);  // the cap itself is fine
}

TEST(NetProtocol, ResultToleratesWhatOlderClientsSend) {
  // Integer metrics count as numbers; a failure may carry the fields of the
  // result it replaces; a failure without a reason says so.
  const Result fit = decode_result(result_with(MessageKind::kFitResult, {{"metric/n", std::int64_t{4}}}));
  EXPECT_EQ(fit.metrics.at("n"), 4.0);
  const Result failed = decode_result(result_with(MessageKind::kTaskFailed, {{"loss", 1.0}, {"metric/a", 2.0}}));
  EXPECT_EQ(failed.error, "(no reason given)");
  // A long, ill-formed error is cut to a bounded, valid UTF-8 text.
  const Result noisy = decode_result(result_with(MessageKind::kTaskFailed, {{"error", std::string(5000, '\xff')}}));
  EXPECT_LE(noisy.error.size(), kMaxErrorTextBytes);
  EXPECT_FALSE(noisy.error.empty());
}

TEST(NetProtocol, ListsAndHeaders) {
  EXPECT_EQ(join_doubles({0.1, -2, 1e-05}), "0.10000000000000001,-2,1.0000000000000001e-05");
  EXPECT_EQ(split_doubles("0.10000000000000001,-2", "x"), (std::vector<double>{0.1, -2}));
  EXPECT_TRUE(split_doubles("", "x").empty());
  expect_refused([] { split_doubles("1,", "scaling_mean"); }, "scaling_mean");
  expect_refused([] { split_doubles("1e999", "scaling_mean"); }, "scaling_mean");
  EXPECT_EQ(split_ints(join_ints({1, 28, 28}), "x"), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(split_names(join_names({"a", "b c"})), (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(bearer("tok-123"), "Bearer tok-123");
  EXPECT_EQ(bearer_token("Bearer tok-123"), "tok-123");
  EXPECT_EQ(bearer_token("Basic dXNlcg=="), std::nullopt);
  EXPECT_EQ(bearer_token("bearer"), std::nullopt);
}

TEST(NetTokens, OwnerMatchesOnlyTheWholeToken) {
  const TokenTable tokens({{"bank-a", "secret-token-a"}, {"bank-b", "secret-token-b"}});
  ASSERT_NE(tokens.owner("secret-token-b"), nullptr);
  EXPECT_EQ(*tokens.owner("secret-token-b"), "bank-b");
  EXPECT_EQ(*tokens.owner("secret-token-a"), "bank-a");
  EXPECT_EQ(tokens.owner("secret-token-"), nullptr);
  EXPECT_EQ(tokens.owner("secret-token-ab"), nullptr);
  EXPECT_EQ(tokens.owner(""), nullptr);
  EXPECT_EQ(tokens.size(), 2u);
}

}  // namespace
}  // namespace fedtrack::net
