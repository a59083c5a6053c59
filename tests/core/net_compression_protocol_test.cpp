// Compression in the network protocol (core/src/net/protocol.h): the join
// answer carries the job's codecs, tasks and fit results say what their
// payload is, and the decoders refuse what this build does not read.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "fedtrack/core/error.h"
#include "net/protocol.h"

namespace fedtrack::net {
namespace {

std::string refusal(const std::function<void()>& decode) {
  try {
    decode();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "decoded";
  return "";
}

Joined compressed_joined() {
  Joined j;
  j.job_id = "job-1";
  j.session = "s";
  j.compression_uplink = "topk";
  j.compression_downlink = "int8";
  j.topk_fraction = 0.05;
  j.error_feedback = false;
  j.compression_seed = 1234567;
  return j;
}

TEST(NetCompressionProtocol, JoinedCarriesTheJobsCompressionOnlyWhenOn) {
  const Joined out = decode_joined(encode_joined(compressed_joined()));
  EXPECT_TRUE(out.compressing());
  EXPECT_EQ(out.compression_uplink, "topk");
  EXPECT_EQ(out.compression_downlink, "int8");
  EXPECT_EQ(out.topk_fraction, 0.05);
  EXPECT_FALSE(out.error_feedback);
  EXPECT_EQ(out.compression_seed, 1234567);
  Joined plain = compressed_joined();
  plain.compression_uplink = plain.compression_downlink = "none";
  const Message m = decode_message(encode_joined(plain));
  EXPECT_EQ(m.header.count("compression_uplink"), 0u);  // a job without compression: the answer is as before
  EXPECT_FALSE(decode_joined(encode_joined(plain)).compressing());
}

TEST(NetCompressionProtocol, JoinedRefusesCodecsThisBuildDoesNotRead) {
  auto with = [](const char* key, Scalar value) {
    Message m = decode_message(encode_joined(compressed_joined()));
    m.header[key] = std::move(value);
    return encode_message(m);
  };
  EXPECT_NE(refusal([&] { decode_joined(with("compression_uplink", std::string("zstd"))); })
                .find("'compression_uplink' names no codec"),
            std::string::npos);
  EXPECT_NE(refusal([&] { decode_joined(with("compression_downlink", std::string("topk"))); })
                .find("'compression_downlink' names no codec this build reads (none, fp16, int8)"),
            std::string::npos);
  EXPECT_NE(refusal([&] { decode_joined(with("topk_fraction", 1.5)); }).find("'topk_fraction' must be in (0, 1]"),
            std::string::npos);
  EXPECT_NE(refusal([&] { decode_joined(with("error_feedback", std::int64_t{1})); }).find("must be a boolean"),
            std::string::npos);
}

TEST(NetCompressionProtocol, TasksAndResultsSayWhatTheirPayloadIs) {
  TaskHead head;
  head.kind = MessageKind::kFitTask;
  head.job_id = "job-1";
  head.task_id = 3;
  head.round = 2;
  head.encoding = kCompressedModelEncoding;
  const TaskMessage task = decode_task(encode_task_head(head, 4) + "FTCU");
  EXPECT_EQ(task.head.encoding, kCompressedModelEncoding);
  head.encoding.clear();
  EXPECT_EQ(decode_task(encode_task_head(head, 0)).head.encoding, "");

  Result r;
  r.job_id = "job-1";
  r.task_id = 3;
  r.round = 2;
  r.num_examples = 10;
  r.payload = "FTCU";
  r.encoding = kCompressedUpdateEncoding;
  EXPECT_EQ(decode_result(encode_result(r)).encoding, kCompressedUpdateEncoding);
  r.encoding = "ftcu-sparse";
  EXPECT_NE(refusal([&] { decode_result(encode_result(r)); }).find("'encoding' is not an update encoding"),
            std::string::npos);
  Message m = decode_message(encode_task_head(head, 0));
  m.header["encoding"] = std::string("gzip");
  EXPECT_NE(refusal([&] { decode_task(encode_message(m)); }).find("'encoding' is not a model encoding"),
            std::string::npos);
}

}  // namespace
}  // namespace fedtrack::net
