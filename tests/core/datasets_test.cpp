// Label validation of the dataset readers: a label outside the dataset's
// classes is corruption naming the file and the first bad record.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <torch/torch.h>

#include "fedtrack/core/datasets.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/training.h"
#include "idx.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

class DatasetLabels : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_test_dir("fedtrack-datasets"); }
  void TearDown() override { testing::remove_test_dir(dir_); }

  // An IDX folder of `labels.size()` 2x2 images per split with these labels.
  void write_idx(const fs::path& dir, const std::vector<std::uint8_t>& labels, bool test_split = true) {
    fs::create_directories(dir);
    const auto n = static_cast<std::int64_t>(labels.size());
    IdxArray images{{n, 2, 2}, std::vector<std::uint8_t>(labels.size() * 4, 7)};
    IdxArray label_file{{n}, labels};
    write_file_atomically((dir / "train-images-idx3-ubyte").string(), encode_idx(images));
    write_file_atomically((dir / "train-labels-idx1-ubyte").string(), encode_idx(label_file));
    if (!test_split) return;
    write_file_atomically((dir / "t10k-images-idx3-ubyte").string(), encode_idx(images));
    write_file_atomically((dir / "t10k-labels-idx1-ubyte").string(), encode_idx({{n}, {0, 1, 2, 3}}));
  }

  fs::path dir_;
};

std::pair<ErrorCode, std::string> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {ErrorCode::kInternal, "(no error)"};
}

TEST_F(DatasetLabels, IdxLabelOutsideTheTenClassesIsCorruptionNamingFileAndRecord) {
  write_idx(dir_ / "good", {9, 0, 3, 9});
  DataSpec spec;
  spec.path = (dir_ / "good").string();
  const DatasetSplits good = load_dataset(spec, 1, false);
  EXPECT_EQ(good.num_classes, 10);  // declared by the dataset, not read off its largest label

  write_idx(dir_ / "bad", {9, 0, 200, 9});  // one byte 3 -> 200
  spec.path = (dir_ / "bad").string();
  const auto [code, what] = error_of([&] { load_dataset(spec, 1, false); });
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_EQ(what, (dir_ / "bad" / "train-labels-idx1-ubyte").string() +
                      ": record 2 has label 200, outside the dataset's 10 classes (0..9)");
}

TEST_F(DatasetLabels, ShardLabelsAreCheckedAgainstTheJobsClasses) {
  write_idx(dir_ / "shard", {1, 2, 10, 4}, false);
  ShardFormat format;
  format.format = "idx";
  format.feature_shape = {1, 2, 2};
  format.scaling = {{0.0}, {1.0}};
  format.num_classes = 10;
  const auto [code, what] = error_of([&] { read_shard((dir_ / "shard").string(), format); });
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_EQ(what, (dir_ / "shard" / "train-labels-idx1-ubyte").string() +
                      ": record 2 has label 10, outside the dataset's 10 classes (0..9)");

  write_file_atomically((dir_ / "csv" / "data.csv").string(), "x,label\n1,no\n2,yes\n3,maybe\n");
  ShardFormat csv;
  csv.format = "csv";
  csv.feature_shape = {1};
  csv.scaling = {{0.0}, {1.0}};
  csv.class_names = {"no", "yes"};
  const auto [csv_code, csv_what] = error_of([&] { read_shard((dir_ / "csv").string(), csv); });
  EXPECT_EQ(csv_code, ErrorCode::kCorruption);
  EXPECT_EQ(csv_what, (dir_ / "csv" / "data.csv").string() +
                          ":4: record 2: label 'maybe' is not one of the dataset's 2 classes");
}

TEST_F(DatasetLabels, CsvDeclaredClassesCatchADamagedLabel) {
  write_file_atomically((dir_ / "train.csv").string(), "x,y\n1,0\n2,1\n3,200\n4,2\n5,1\n");
  DataSpec spec;
  spec.dataset = "csv";
  spec.path = (dir_ / "train.csv").string();
  spec.test_fraction = 0.4;
  spec.classes = {"0", "1", "2"};
  const auto [code, what] = error_of([&] { load_dataset(spec, 1, false); });
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_EQ(what, spec.path + ":4: record 2: label '200' is not one of the dataset's 3 classes");

  write_file_atomically(spec.path, "x,y\n1,0\n2,1\n3,2\n4,2\n5,1\n");
  const DatasetSplits ok = load_dataset(spec, 1, false);
  EXPECT_EQ(ok.num_classes, 3);
}

// The server's test images stay in their file and are read again on every
// evaluation: a file changed under a running job is corruption naming it,
// never metrics silently computed on other images.
TEST_F(DatasetLabels, ServerTestImagesChangedUnderTheJobAreCorruptionNamingTheFile) {
  write_idx(dir_ / "data", {1, 2, 3, 4});
  DataSpec spec;
  spec.path = (dir_ / "data").string();
  const DatasetSplits server = load_test_split(spec, 1);
  ASSERT_TRUE(server.test.streamed());
  EXPECT_EQ(server.test.all().features.size(0), 4);
  const std::string images = (dir_ / "data" / "t10k-images-idx3-ubyte").string();
  IdxArray other{{4, 2, 2}, std::vector<std::uint8_t>(16, 7)};
  other.data[13] = 8;  // one pixel of the last image
  write_file_atomically(images, encode_idx(other));
  const auto [code, what] = error_of([&] { server.test.all(); });
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find(images), std::string::npos) << what;
  EXPECT_NE(what.find("changed"), std::string::npos) << what;
  write_file_atomically(images, encode_idx({{2, 4, 2}, std::vector<std::uint8_t>(16, 7)}));  // same bytes, other shape
  EXPECT_EQ(error_of([&] { server.test.all(); }).first, ErrorCode::kCorruption);
}

}  // namespace
}  // namespace fedtrack

namespace fedtrack {
namespace {

// The server's scaling comes from a histogram of the raw IDX bytes, never
// from tensors of the whole training split, and is the same one load_dataset
// (`fedtrack run`) computes: clients standardize their shards with it.
void expect_server_scaling_is_the_loaders(const DataSpec& spec) {
  const DatasetSplits whole = load_dataset(spec, 7, false);
  const DatasetSplits server = load_test_split(spec, 7);
  EXPECT_EQ(server.train.size(), 0) << "the server must not hold the training split";
  EXPECT_EQ(server.scaling.mean, whole.scaling.mean) << "limit_train " << spec.limit_train;
  EXPECT_EQ(server.scaling.stddev, whole.scaling.stddev) << "limit_train " << spec.limit_train;
  EXPECT_EQ(server.feature_shape, whole.feature_shape);
  EXPECT_EQ(server.num_classes, whole.num_classes);
  TensorData test = whole.test.all();
  apply_scaling(test, whole.scaling);
  const TensorData served = server.test.all();
  EXPECT_TRUE(torch::equal(served.features, test.features));
  EXPECT_TRUE(torch::equal(served.labels, test.labels));
}

float next_up(float x) { return std::nextafter(x, 2.0f); }
float next_down(float x) { return std::nextafter(x, -1.0f); }

TEST(ServerScaling, FashionMnistPixelStatisticsAreTheWholeSplitTensorStatistics) {
  DataSpec spec;
  spec.dataset = "fashion-mnist";
  spec.path = FEDTRACK_FASHION_MNIST_DIR;
  // scripts/setup.sh installs Debian's dataset-fashion-mnist; a missing folder is a broken setup, not a skip.
  ASSERT_TRUE(std::filesystem::is_directory(spec.path)) << "no " << spec.path << " (apt-get install dataset-fashion-mnist)";
  for (std::int64_t limit : {0, 1000, 12345}) {
    spec.limit_train = limit;
    expect_server_scaling_is_the_loaders(spec);
    // What the loader computed before (torch on a float tensor of every
    // training image): the histogram's mean is the exactly rounded one,
    // torch's float32 cascade sum may land one ulp away (and moves with
    // the thread count); the std then rounds to the same float32 or its
    // neighbour.
    const DatasetSplits whole = load_dataset(spec, 7, false);
    const float mean = static_cast<float>(whole.scaling.mean.at(0));
    const float stddev = static_cast<float>(whole.scaling.stddev.at(0));
    EXPECT_EQ(static_cast<double>(mean), whole.scaling.mean[0]) << "a float32 value, as torch's";
    for (int threads : {1, 2}) {
      torch::set_num_threads(threads);
      const float torch_mean = whole.train.features.mean().item<float>();
      const float torch_std = whole.train.features.std().item<float>();
      EXPECT_TRUE(torch_mean == mean || torch_mean == next_up(mean) || torch_mean == next_down(mean))
          << "limit " << limit << " threads " << threads << ": " << torch_mean << " vs " << mean;
      EXPECT_TRUE(torch_std == stddev || torch_std == next_up(stddev) || torch_std == next_down(stddev))
          << "limit " << limit << " threads " << threads << ": " << torch_std << " vs " << stddev;
    }
  }
}

// The server evaluates on the test images streamed from their file, a batch
// at a time, holding only the labels between evaluations (31 MB of float32
// features before), and gets bit-identical metrics: every batch is what
// load_dataset's scaled test split holds in those rows.
TEST(ServerTestSplit, FashionMnistIsStreamedAndEvaluatesBitIdentically) {
  DataSpec spec;
  spec.dataset = "fashion-mnist";
  spec.path = FEDTRACK_FASHION_MNIST_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(spec.path)) << "no " << spec.path << " (apt-get install dataset-fashion-mnist)";
  spec.limit_test = 2500;
  const DatasetSplits server = load_test_split(spec, 7);
  ASSERT_EQ(server.test.size(), 2500);
  EXPECT_TRUE(server.test.streamed());
  EXPECT_EQ(server.test.resident_bytes(), 2500 * 8) << "only the int64 labels stay in memory";
  // The rows as one float32 tensor: load_dataset's scaled test split
  // (ServerScaling above checks that all() is exactly that).
  const TestSplit held(server.test.all());
  EXPECT_EQ(held.resident_bytes(), 2500 * (784 * 4 + 8));
  torch::manual_seed(3);
  torch::nn::AnyModule model = make_model("mlp", ModelInput{server.feature_shape, server.num_classes});
  for (std::int64_t batch : {1000, 333, 2500}) {
    const LoopStats streamed = evaluate_classifier(model, server.test.examples(), batch);
    const LoopStats in_memory = evaluate_classifier(model, held.examples(), batch);
    EXPECT_EQ(streamed.loss, in_memory.loss) << "batch " << batch;  // bit for bit
    EXPECT_EQ(streamed.accuracy, in_memory.accuracy) << "batch " << batch;
    EXPECT_EQ(streamed.examples, 2500);
  }
}

TEST(ServerScaling, CsvColumnStatisticsAreTheWholeSplitComputation) {
  DataSpec spec;
  spec.dataset = "csv";
  spec.path = FEDTRACK_SOURCE_DIR "/examples/csv-tabular/loans.csv";
  spec.label = "decision";
  expect_server_scaling_is_the_loaders(spec);
}

}  // namespace
}  // namespace fedtrack
