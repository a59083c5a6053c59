#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/parameters.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

// Nested submodules and BatchNorm buffers (including an int64 counter).
struct BlockImpl : torch::nn::Module {
  BlockImpl() : fc(register_module("fc", torch::nn::Linear(4, 3))),
                bn(register_module("bn", torch::nn::BatchNorm1d(3))) {}
  torch::Tensor forward(torch::Tensor x) { return bn(fc(x)); }
  torch::nn::Linear fc;
  torch::nn::BatchNorm1d bn;
};
TORCH_MODULE(Block);

struct NetImpl : torch::nn::Module {
  NetImpl() : block(register_module("block", Block())),
              head(register_module("head", torch::nn::Linear(3, 2))) {}
  torch::Tensor forward(torch::Tensor x) { return head(block(x)); }
  Block block;
  torch::nn::Linear head;
};
TORCH_MODULE(Net);

Net trained_net(int seed) {
  torch::manual_seed(seed);
  Net net;
  net->train();
  net->forward(torch::randn({8, 4}));  // moves BatchNorm running stats and counter
  return net;
}

bool bitwise_equal(const Parameters& a, const Parameters& b) {
  if (a.names != b.names || a.buffer_begin != b.buffer_begin || a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto& x = a.tensors[i];
    const auto& y = b.tensors[i];
    if (x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes()) return false;
    // An empty tensor's data_ptr() is null, and memcmp's arguments must not be
    // null even for a length of 0 (UBSan: nonnull-attribute).
    const std::size_t n = x.numel() * x.element_size();
    if (n != 0 && std::memcmp(x.data_ptr(), y.data_ptr(), n) != 0) return false;
  }
  return true;
}

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fedtrack-ckpt-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Parameters, TakesParametersThenBuffersInModuleOrder) {
  const Parameters p = parameters_from_module(*trained_net(1));
  EXPECT_EQ(p.names, (std::vector<std::string>{
                         "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
                         "head.weight", "head.bias", "block.bn.running_mean", "block.bn.running_var",
                         "block.bn.num_batches_tracked"}));
  EXPECT_EQ(p.buffer_begin, 6u);
  EXPECT_EQ(p.tensors.back().item<std::int64_t>(), 1);
}

TEST(Parameters, EncodingRoundTripsBitExact) {
  Parameters p = parameters_from_module(*trained_net(2));
  p.names.push_back("extra.scalar");
  p.tensors.push_back(torch::tensor(3.25, torch::kDouble).reshape({}));
  p.names.push_back("extra.empty");
  p.tensors.push_back(torch::empty({0, 5}, torch::kFloat));
  const std::string bytes = encode_parameters(p);
  EXPECT_EQ(bytes.size(), encoded_size(p));
  const Parameters back = decode_parameters(bytes);
  EXPECT_TRUE(bitwise_equal(p, back));
  EXPECT_EQ(encode_parameters(back), bytes);
}

TEST(Parameters, DecodingChecksEveryLength) {
  const std::string bytes = encode_parameters(parameters_from_module(*trained_net(3)));
  auto code_of = [](const std::string& b) {
    try {
      decode_parameters(b);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kInternal;  // decoded: not what these cases expect
  };
  EXPECT_EQ(code_of(bytes.substr(0, bytes.size() - 1)), ErrorCode::kCorruption);
  EXPECT_EQ(code_of(bytes + "x"), ErrorCode::kCorruption);
  EXPECT_EQ(code_of(bytes.substr(0, 10)), ErrorCode::kCorruption);
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_EQ(code_of(bad_magic), ErrorCode::kCorruption);
  std::string future = bytes;
  future[4] = 9;  // version 9
  EXPECT_EQ(code_of(future), ErrorCode::kInvalidArgument);
}

TEST(Parameters, LoadRejectsWrongShapeAndLeavesModuleUnchanged) {
  Net net = trained_net(4);
  const Parameters before = parameters_from_module(*net);
  Parameters wrong = clone(before);
  wrong.tensors[4] = torch::zeros({5, 3});
  try {
    load_parameters(*net, wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "model: 'head.weight' has shape [5, 3], expected [2, 3]");
  }
  EXPECT_TRUE(bitwise_equal(before, parameters_from_module(*net)));
}

TEST(Parameters, UpdatesWithNanAreRejectedByName) {
  const Parameters global = parameters_from_module(*trained_net(5));
  Parameters update = clone(global);
  update.tensors[1][0] = std::numeric_limits<float>::quiet_NaN();
  try {
    check_update(global, update, "client client-003");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "client client-003: 'block.fc.bias' contains NaN or Inf");
  }
}

TEST_F(Checkpoints, BytesDependOnlyOnTheTensors) {
  const Parameters p = parameters_from_module(*trained_net(6));
  const std::string first = (dir_ / "job-a" / "round-001.pt").string();
  const std::string second = (dir_ / "elsewhere" / "global_model.bin").string();
  write_checkpoint(first, p);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a different second on the clock
  write_checkpoint(second, p);
  const std::string a = read_file(first);
  EXPECT_EQ(a, read_file(second));
  EXPECT_EQ(a, checkpoint_bytes(p));
  EXPECT_NE(a.find("archive/data.pkl"), std::string::npos);
  EXPECT_EQ(a.find("round-001"), std::string::npos);
  EXPECT_EQ(a.find("global_model"), std::string::npos);
}

TEST_F(Checkpoints, TorchLoadRestoresTheModelExactly) {
  Net original = trained_net(7);
  const Parameters p = parameters_from_module(*original);
  const std::string path = (dir_ / "model.pt").string();
  write_checkpoint(path, p);
  Net restored = trained_net(99);  // different weights and stats
  torch::load(restored, path);     // what a LibTorch user does
  EXPECT_TRUE(bitwise_equal(p, parameters_from_module(*restored)));
  EXPECT_TRUE(bitwise_equal(p, read_checkpoint(path, p)));
}

TEST_F(Checkpoints, ReadsWhatTorchSaveWrote) {
  Net net = trained_net(8);
  fs::create_directories(dir_);
  const std::string path = (dir_ / "saved-by-libtorch.pt").string();
  torch::save(net, path);
  const Parameters layout = parameters_from_module(*trained_net(1));
  EXPECT_TRUE(bitwise_equal(parameters_from_module(*net), read_checkpoint(path, layout)));
}

TEST_F(Checkpoints, MissingOrGarbageFilesAreClearErrors) {
  const Parameters layout = parameters_from_module(*trained_net(1));
  try {
    read_checkpoint((dir_ / "nope.pt").string(), layout);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  write_file_atomically((dir_ / "garbage.pt").string(), "not a zip archive");
  try {
    read_checkpoint((dir_ / "garbage.pt").string(), layout);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
  }
}

}  // namespace
}  // namespace fedtrack
