// SecAgg+ in the network protocol (core/src/net/protocol.h, site_registry.h):
// the stage task and its reply survive their one encoder and decoder, the
// decoders refuse anything else (Error kCorruption: the server's 400), and
// the registry pairs a stage task only with a stage reply, keeping its bytes.
#include <gtest/gtest.h>

#include <future>
#include <string>

#include "core/fake_clock.h"
#include "fedtrack/core/error.h"
#include "net/protocol.h"
#include "net/site_registry.h"

namespace fedtrack::net {
namespace {

template <typename Decode>
void expect_corrupt(Decode decode, const std::string& needle) {
  try {
    decode();
    ADD_FAILURE() << "decoded; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

const std::string kStageBytes("FTSA\x01\x03 masked vector \x00\xff bytes", 29);

TEST(SecAggProtocol, AStageTaskRoundTripsWithItsBytes) {
  TaskHead head;
  head.kind = MessageKind::kSecAggTask;
  head.job_id = "job-1";
  head.task_id = 42;
  head.round = 3;
  head.stage = 3;
  const TaskMessage t = decode_task(encode_task_head(head, kStageBytes.size()) + kStageBytes);
  EXPECT_EQ(t.head.kind, MessageKind::kSecAggTask);
  EXPECT_EQ(t.head.job_id, "job-1");
  EXPECT_EQ(t.head.task_id, 42);
  EXPECT_EQ(t.head.round, 3);
  EXPECT_EQ(t.head.stage, 3);
  EXPECT_EQ(t.payload, kStageBytes);
  for (std::int64_t bad : {0, 5, -1}) {
    head.stage = bad;
    expect_corrupt([&] { decode_task(encode_task_head(head, 0)); }, "'stage' must be 1 to 4");
  }
}

TEST(SecAggProtocol, AStageReplyRoundTripsAndIsAClosedMessage) {
  Result r;
  r.kind = MessageKind::kSecAggResult;
  r.job_id = "job-1";
  r.task_id = 42;
  r.round = 3;
  r.stage = 4;
  r.payload = kStageBytes;
  r.metrics["ignored"] = 1;  // not part of a stage reply: never sent
  const Result back = decode_result(encode_result(r));
  EXPECT_EQ(back.kind, MessageKind::kSecAggResult);
  EXPECT_EQ(back.task_id, 42);
  EXPECT_EQ(back.round, 3);
  EXPECT_EQ(back.stage, 4);
  EXPECT_EQ(back.payload, kStageBytes);
  EXPECT_TRUE(back.metrics.empty());

  const ConfigRecord good = {{"job_id", std::string("j")}, {"task_id", std::int64_t{1}}, {"round", std::int64_t{1}},
                             {"stage", std::int64_t{2}}};
  auto with = [&](ConfigRecord header) {
    return encode_message({MessageKind::kSecAggResult, std::move(header), kStageBytes});
  };
  EXPECT_NO_THROW(decode_result(with(good)));
  auto extra = good;
  extra["metric/loss"] = 1.0;
  expect_corrupt([&] { decode_result(with(extra)); }, "'metric/loss' is not a field of this message");
  auto missing = good;
  missing.erase("stage");
  expect_corrupt([&] { decode_result(with(missing)); }, "'stage' is missing");
  auto wrong_type = good;
  wrong_type["stage"] = std::string("2");
  expect_corrupt([&] { decode_result(with(wrong_type)); }, "'stage' must be an integer");
  auto out_of_range = good;
  out_of_range["stage"] = std::int64_t{9};
  expect_corrupt([&] { decode_result(with(out_of_range)); }, "'stage' must be 1 to 4");
}

TEST(SecAggProtocol, TheJoinSaysWhetherSecureAggregationIsOn) {
  Joined j;
  j.job_id = "job-1";
  j.session = "s";
  EXPECT_FALSE(decode_joined(encode_joined(j)).secure_aggregation);
  EXPECT_EQ(encode_joined(j).find("secure_aggregation"), std::string::npos);  // off: not sent
  j.secure_aggregation = true;
  EXPECT_TRUE(decode_joined(encode_joined(j)).secure_aggregation);
  expect_corrupt([] {
    decode_joined(encode_message({MessageKind::kJoined,
                                  {{"session", std::string("s")}, {"secure_aggregation", std::string("yes")}}, ""}));
  }, "'secure_aggregation' must be a boolean");
}

TEST(SecAggProtocol, AHeldFitResultDecodesWithoutAModel) {
  Result r;
  r.kind = MessageKind::kFitResult;
  r.job_id = "j";
  r.num_examples = 5;
  r.encoding = kSecAggHeldEncoding;
  const Result back = decode_result(encode_result(r));
  EXPECT_EQ(back.encoding, kSecAggHeldEncoding);
  EXPECT_TRUE(back.payload.empty());
}

TEST(SecAggProtocol, TheRegistryPairsAStageTaskOnlyWithAStageReplyAndKeepsItsBytes) {
  fedtrack::testing::FakeClock clock;
  SiteRegistry registry(RegistryLimits{}, clock, nullptr, nullptr);
  const auto session = registry.join("bank-a", "p", "h", "h:1").session;
  auto task = std::make_shared<SiteTask>();
  task->id = registry.next_task_id();
  task->kind = MessageKind::kSecAggTask;
  task->round = 2;
  task->secagg_stage = 1;
  task->head = "head";
  task->payload = std::make_shared<const std::string>(kStageBytes);
  auto outcome = std::async(std::launch::async, [&] { return registry.run("bank-a", task, std::nullopt, nullptr); });
  ASSERT_EQ(registry.poll("bank-a", session).task, task);
  const auto id = static_cast<std::int64_t>(task->id);
  EXPECT_THROW(registry.open_task("bank-a", session, id, 2, MessageKind::kFitResult), SiteConflict);
  EXPECT_THROW(registry.open_task("bank-a", session, id, 2, MessageKind::kEvaluateResult), SiteConflict);
  const auto open = registry.open_task("bank-a", session, id, 2, MessageKind::kSecAggResult);
  Result reply;
  reply.kind = MessageKind::kSecAggResult;
  reply.task_id = id;
  reply.round = 2;
  reply.stage = 1;
  reply.payload = "the reply";
  registry.deliver("bank-a", *open, reply, nullptr, 99, "");
  ASSERT_EQ(outcome.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  const TaskOutcome done = outcome.get();
  EXPECT_EQ(done.failure, "");
  ASSERT_TRUE(done.result);
  EXPECT_EQ(done.result->payload, "the reply");
}

}  // namespace
}  // namespace fedtrack::net
