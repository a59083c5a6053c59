// What the server decodes from a client before anything else: the FTPM
// tensor encoding and the FTMS message envelope. Crafted shapes and counts
// must be Error(kCorruption), never a LibTorch exception or a huge allocation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "byte_codec.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "wire.h"

namespace fedtrack {
namespace {

// One float32 tensor named "w" with the given dims and data bytes, FTPM v1.
std::string one_tensor(const std::vector<std::int64_t>& dims, std::uint64_t declared_bytes, const std::string& data,
                       std::uint32_t count = 1) {
  ByteWriter body;
  body.put<std::uint32_t>(count);
  body.put<std::uint32_t>(0);
  body.put<std::uint16_t>(1);
  body.append("w");
  body.put<std::uint8_t>(1);  // float32
  body.put<std::uint8_t>(static_cast<std::uint8_t>(dims.size()));
  for (auto d : dims) body.put<std::int64_t>(d);
  body.put<std::uint64_t>(declared_bytes);
  body.append(data);
  const std::string rest = body.take();
  ByteWriter w;
  w.append("FTPM");
  w.put<std::uint16_t>(1);
  w.put<std::uint16_t>(0);
  w.put<std::uint64_t>(rest.size());
  w.append(rest);
  return w.take();
}

void expect_corruption(const std::string& bytes, const std::string& what) {
  try {
    decode_parameters(bytes);
    ADD_FAILURE() << what << ": decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << what << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": not an Error: " << e.what();
  }
}

TEST(ParameterDecoder, AWellFormedTensorStillDecodes) {
  const Parameters p = decode_parameters(one_tensor({2, 3}, 24, std::string(24, '\0')));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p.tensors[0].sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(decode_parameters(one_tensor({0, 5}, 0, "")).tensors[0].numel(), 0);
}

TEST(ParameterDecoder, ShapesWhoseByteCountWrapsPast2To64AreCorruption) {
  // 2^62 x 4 float32 = 2^66 bytes = 0 modulo 2^64: passed the old size check and made torch::empty throw.
  expect_corruption(one_tensor({std::int64_t{1} << 62, 4}, 0, ""), "2^62 x 4");
  expect_corruption(one_tensor({std::int64_t{1} << 61, 8}, 0, ""), "2^61 x 8");
  expect_corruption(one_tensor({std::int64_t{1} << 32, std::int64_t{1} << 32, 4}, 0, ""), "2^32 x 2^32 x 4");
  expect_corruption(one_tensor({INT64_MAX, INT64_MAX}, 4, "abcd"), "max x max");
}

TEST(ParameterDecoder, NegativeHugeAndHighRankShapesAreCorruption) {
  expect_corruption(one_tensor({-1, 4}, 0, ""), "negative");
  expect_corruption(one_tensor({std::int64_t{1} << 40}, std::uint64_t{1} << 42, std::string(64, '\0')), "huge");
  expect_corruption(one_tensor(std::vector<std::int64_t>(9, 1), 4, std::string(4, '\0')), "rank 9");
  expect_corruption(one_tensor({1}, 4, std::string(4, '\0'), 0xFFFFFFFFu), "4 billion tensors");
}

TEST(MessageDecoder, HeadersOverTheirLimitsAreCorruption) {
  ConfigRecord many;
  for (std::uint32_t i = 0; i <= kMaxHeaderEntries; ++i) many["k" + std::to_string(i)] = std::int64_t{1};
  try {
    decode_message(encode_message({MessageKind::kFitResult, many, ""}));
    ADD_FAILURE() << "decoded " << many.size() << " header entries";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
  }
}

}  // namespace
}  // namespace fedtrack
