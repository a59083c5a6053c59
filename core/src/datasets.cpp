#include "fedtrack/core/datasets.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "csv.h"
#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "idx.h"

namespace fedtrack {

// A test split's images left in their IDX file.
struct TestSplit::Streamed {
  std::string path;
  std::vector<std::int64_t> dims;  // the file's: {N, H, W}
  std::int64_t rows = 0;           // the first `rows` images are the split
  torch::Tensor labels;            // [rows] int64
  std::string digest;              // SHA-256 of those rows' bytes at load
  bool scale = false;
  double mean = 0, stddev = 1;
};

namespace {

TensorData head(const TensorData& data, std::int64_t limit) {
  if (limit <= 0 || limit >= data.size()) return data;
  return {data.features.slice(0, 0, limit).clone(), data.labels.slice(0, 0, limit).clone()};
}

torch::Tensor idx_images(const IdxArray& a, const std::string& path) {
  if (a.dims.size() != 3) throw Error::corruption(path + ": expected a 3-dimensional image file");
  auto t = torch::empty({a.dims[0], 1, a.dims[1], a.dims[2]}, torch::kUInt8);
  std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t.to(torch::kFloat).div_(255.0);
}

// Fashion-MNIST and MNIST both have ten classes.
constexpr std::int64_t kIdxClasses = 10;

// Labels must be class indices below `num_classes` (when known): a damaged
// byte (9 -> 200) is corruption, never a 201-class model.
torch::Tensor idx_labels(const IdxArray& a, const std::string& path, std::int64_t num_classes) {
  if (a.dims.size() != 1) throw Error::corruption(path + ": expected a 1-dimensional label file");
  if (num_classes > 0) {
    for (std::size_t i = 0; i < a.data.size(); ++i) {
      if (a.data[i] >= num_classes) {
        throw Error::corruption(path + ": record " + std::to_string(i) + " has label " + std::to_string(a.data[i]) +
                                ", outside the dataset's " + std::to_string(num_classes) + " classes (0.." +
                                std::to_string(num_classes - 1) + ")");
      }
    }
  }
  auto t = torch::empty({a.dims[0]}, torch::kUInt8);
  std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t.to(torch::kLong);
}

// The loader's image standardization, (mean, std) of the training pixels as
// float32 values v / 255, from a histogram of the raw bytes: the server needs
// only these two numbers, not a float tensor of every training image (188 MB
// for Fashion-MNIST). It reproduces what torch computes on that tensor:
// mean() is the float32 sum divided by the count in float32, std() the square
// root, rounded to float32, of the double sum of (x - mean)^2 over n - 1. Here
// the float32 sum is the exactly rounded sum (exact in 128-bit fixed point:
// every v / 255 in float32 is a multiple of 2^-31) and the squared deviations
// are summed in long double. torch's float32 sum rounds inside its cascade
// and per-thread chunks, so its mean can be an ulp away from this one and
// depends on the thread count; this one is the same on every machine, and
// both `fedtrack run` and `fedtrack server` use it (datasets_test.cpp checks
// it against torch within one float32 ulp).
using ByteCounts = std::array<std::uint64_t, 256>;

FeatureScaling pixel_scaling(const ByteCounts& count) {
  std::uint64_t n = 0;
  for (const auto c : count) n += c;
  std::array<float, 256> value{};
  unsigned __int128 fixed_sum = 0;  // sum in units of 2^-31
  for (int v = 0; v < 256; ++v) {
    value[v] = static_cast<float>(v) / 255.0f;
    const auto units = static_cast<std::uint64_t>(std::ldexp(static_cast<double>(value[v]), 31));
    fixed_sum += static_cast<unsigned __int128>(units) * count[v];
  }
  const float sum = std::ldexp(static_cast<float>(fixed_sum), -31);
  const float mean = sum / static_cast<float>(n);
  long double squares = 0;
  for (int v = 0; v < 256; ++v) {
    const long double dx = static_cast<long double>(static_cast<double>(value[v]) - static_cast<double>(mean));
    squares += static_cast<long double>(count[v]) * dx * dx;
  }
  const double var = static_cast<double>(squares) / std::max(0.0, static_cast<double>(n) - 1.0);
  const float stddev = static_cast<float>(std::sqrt(var));
  return {{static_cast<double>(mean)}, {static_cast<double>(stddev)}};
}

DatasetSplits load_idx_dataset(const DataSpec& spec, bool scale, bool keep_train) {
  const std::string dir = spec.path.empty() ? default_dataset_path(spec.dataset) : spec.path;
  if (!std::filesystem::is_directory(dir)) {
    std::string hint = spec.dataset == "fashion-mnist"
                           ? " (apt-get install dataset-fashion-mnist, or set data.path)"
                           : " (set data.path to a folder of IDX files)";
    throw Error::not_found(spec.dataset + ": no folder " + dir + hint);
  }
  auto read = [&](const std::string& stem) {
    const std::string path = find_idx_file(dir, stem);
    return std::make_pair(read_idx(path), path);
  };
  DatasetSplits out;
  std::vector<std::int64_t> image_dims;
  {  // the training split: as tensors, or only its pixel statistics
    auto [train_y, train_y_path] = read("train-labels-idx1-ubyte");
    const torch::Tensor labels = idx_labels(train_y, train_y_path, kIdxClasses);
    const std::string train_x_path = find_idx_file(dir, "train-images-idx3-ubyte");
    ByteCounts counts{};
    std::uint64_t counted = 0, to_count = 0;
    auto check_dims = [&](const std::vector<std::int64_t>& dims) {
      if (dims.size() != 3) throw Error::corruption(train_x_path + ": expected a 3-dimensional image file");
      if (dims[0] != labels.size(0)) throw Error::corruption(spec.dataset + ": image and label counts differ in " + dir);
      image_dims = dims;
      std::int64_t rows = dims[0];
      if (spec.limit_train > 0 && spec.limit_train < rows) rows = spec.limit_train;
      to_count = static_cast<std::uint64_t>(rows * dims[1] * dims[2]);
    };
    auto count_bytes = [&](const std::uint8_t* bytes, std::size_t n) {
      for (std::size_t i = 0; i < n && counted < to_count; ++i, ++counted) ++counts[bytes[i]];
    };
    if (keep_train) {
      const IdxArray train_x = read_idx(train_x_path);
      check_dims(train_x.dims);
      count_bytes(train_x.data.data(), train_x.data.size());
      out.train = head({idx_images(train_x, train_x_path), labels}, spec.limit_train);
    } else {  // the server: the images pass through a histogram, 64 KiB at a time
      stream_idx(train_x_path, check_dims, count_bytes);
    }
    out.scaling = pixel_scaling(counts);
  }
  auto [test_y, test_y_path] = read("t10k-labels-idx1-ubyte");
  const std::string test_x_path = find_idx_file(dir, "t10k-images-idx3-ubyte");
  torch::Tensor test_labels = idx_labels(test_y, test_y_path, kIdxClasses);
  if (keep_train) {
    TensorData test{idx_images(read_idx(test_x_path), test_x_path), test_labels};
    if (test.features.size(0) != test.size()) {
      throw Error::corruption(spec.dataset + ": image and label counts differ in " + dir);
    }
    test = head(test, spec.limit_test);
    if (scale) {
      apply_scaling(out.train, out.scaling);
      apply_scaling(test, out.scaling);
    }
    out.test = TestSplit(std::move(test));
  } else {  // the server: the images stay in their file, read again on each pass
    auto streamed = std::make_shared<TestSplit::Streamed>();
    streamed->path = test_x_path;
    streamed->scale = scale;
    if (scale) {
      streamed->mean = out.scaling.mean[0];
      streamed->stddev = out.scaling.stddev[0];
    }
    Sha256 digest;
    std::uint64_t to_hash = 0;  // the split's rows, when limit_test cuts it
    stream_idx(
        test_x_path,
        [&](const std::vector<std::int64_t>& dims) {
          if (dims.size() != 3) throw Error::corruption(test_x_path + ": expected a 3-dimensional image file");
          if (dims[0] != test_labels.size(0)) {
            throw Error::corruption(spec.dataset + ": image and label counts differ in " + dir);
          }
          streamed->dims = dims;
          streamed->rows = dims[0];
          if (spec.limit_test > 0 && spec.limit_test < dims[0]) streamed->rows = spec.limit_test;
          to_hash = static_cast<std::uint64_t>(streamed->rows * dims[1] * dims[2]);
        },
        [&](const std::uint8_t* bytes, std::size_t n) {
          const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, to_hash));
          digest.update(bytes, take);
          to_hash -= take;
        });
    streamed->digest = digest.hex();
    streamed->labels = test_labels.slice(0, 0, streamed->rows).clone();
    out.test = TestSplit(std::shared_ptr<const TestSplit::Streamed>(std::move(streamed)));
  }
  out.format = "idx";
  out.feature_shape = {1, image_dims[1], image_dims[2]};
  out.num_classes = kIdxClasses;
  out.description = spec.dataset + " from " + dir;
  return out;
}

TensorData csv_tensors(const CsvDataset& csv) {
  const auto rows = csv.rows();
  const auto cols = static_cast<std::int64_t>(csv.feature_names.size());
  TensorData d;
  d.features = torch::empty({rows, cols}, torch::kFloat);
  std::memcpy(d.features.data_ptr(), csv.features.data(), csv.features.size() * sizeof(float));
  d.labels = torch::empty({rows}, torch::kLong);
  std::memcpy(d.labels.data_ptr(), csv.labels.data(), csv.labels.size() * sizeof(std::int64_t));
  return d;
}

DatasetSplits load_csv_dataset(const DataSpec& spec, std::uint64_t seed, bool scale) {
  if (spec.path.empty()) throw Error::invalid_argument("csv: data.path must name the CSV file");
  const CsvDataset train_csv = read_csv_dataset(spec.path, spec.label, spec.classes);
  DatasetSplits out;
  TensorData test;
  TensorData all = csv_tensors(train_csv);
  if (!spec.test_path.empty()) {
    const CsvDataset test_csv = read_csv_dataset(spec.test_path, spec.label, train_csv.class_names);
    if (test_csv.feature_names != train_csv.feature_names) {
      throw Error::invalid_argument("csv: " + spec.test_path + " has different feature columns than " + spec.path);
    }
    out.train = all;
    test = csv_tensors(test_csv);
  } else {
    std::vector<std::int64_t> order(all.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed ^ 0x7e57u);
    std::shuffle(order.begin(), order.end(), rng);
    const auto n_test = static_cast<std::int64_t>(static_cast<double>(all.size()) * spec.test_fraction);
    if (n_test < 1 || n_test >= all.size()) {
      throw Error::invalid_argument("csv: test_fraction " + std::to_string(spec.test_fraction) +
                                    " leaves no test or no training rows in " + spec.path);
    }
    std::vector<std::int64_t> test_rows(order.begin(), order.begin() + n_test);
    std::vector<std::int64_t> train_rows(order.begin() + n_test, order.end());
    std::sort(test_rows.begin(), test_rows.end());
    std::sort(train_rows.begin(), train_rows.end());
    out.train = select_rows(all, train_rows);
    test = select_rows(all, test_rows);
  }
  out.train = head(out.train, spec.limit_train);
  test = head(test, spec.limit_test);
  const torch::Tensor mean = out.train.features.mean(0).to(torch::kDouble).contiguous();
  torch::Tensor stddev = out.train.features.std(0);
  stddev = torch::where(stddev > 0, stddev, torch::ones_like(stddev)).to(torch::kDouble).contiguous();
  out.scaling.mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  out.scaling.stddev.assign(stddev.data_ptr<double>(), stddev.data_ptr<double>() + stddev.numel());
  if (scale) {
    apply_scaling(out.train, out.scaling);
    apply_scaling(test, out.scaling);
  }
  out.test = TestSplit(std::move(test));
  out.format = "csv";
  out.feature_names = train_csv.feature_names;
  out.class_names = train_csv.class_names;
  out.label_column = spec.label;
  out.feature_shape = {static_cast<std::int64_t>(train_csv.feature_names.size())};
  out.num_classes = static_cast<std::int64_t>(train_csv.class_names.size());
  out.description = "csv " + spec.path;
  return out;
}

}  // namespace

std::string default_dataset_path(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (dataset == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

DatasetSplits load_dataset(const DataSpec& spec, std::uint64_t seed, bool scale) {
  if (spec.dataset == "fashion-mnist" || spec.dataset == "mnist") return load_idx_dataset(spec, scale, true);
  if (spec.dataset == "csv") return load_csv_dataset(spec, seed, scale);
  throw Error::invalid_argument("unknown dataset '" + spec.dataset +
                                "' (expected fashion-mnist, mnist or csv)");
}

DatasetSplits load_test_split(const DataSpec& spec, std::uint64_t seed) {
  if (spec.dataset == "fashion-mnist" || spec.dataset == "mnist") return load_idx_dataset(spec, true, false);
  DatasetSplits out = load_dataset(spec, seed, true);
  out.train = {};
  return out;
}

namespace {

// One pass over a streamed split: each batch's bytes from the file, scaled
// as load_dataset scales the whole split (idx_images, then apply_scaling):
// the same float32 operations on each value, wherever a batch starts.
class StreamedImages : public ExampleStream {
 public:
  explicit StreamedImages(std::shared_ptr<const TestSplit::Streamed> split)
      : split_(std::move(split)), file_(split_->path) {
    if (file_.dims() != split_->dims) throw changed("its dimensions differ");
  }

  TensorData next(std::int64_t n) override {
    if (n < 0 || n > split_->rows - at_) {
      throw Error::invalid_argument(split_->path + ": a batch of " + std::to_string(n) + " past the test split's " +
                                    std::to_string(split_->rows) + " images");
    }
    torch::Tensor pixels = torch::empty({n, 1, split_->dims[1], split_->dims[2]}, torch::kUInt8);
    const auto bytes = static_cast<std::size_t>(pixels.numel());
    file_.read(pixels.data_ptr<std::uint8_t>(), bytes);
    digest_.update(pixels.data_ptr<std::uint8_t>(), bytes);
    TensorData out{pixels.to(torch::kFloat).div_(255.0), split_->labels.slice(0, at_, at_ + n)};
    if (split_->scale) out.features.sub_(split_->mean).div_(split_->stddev);
    at_ += n;
    if (at_ == split_->rows && digest_.hex() != split_->digest) throw changed("its images differ");
    return out;
  }

 private:
  Error changed(const std::string& how) const {
    return Error::corruption(split_->path + ": the test images changed since the job loaded them (" + how +
                             "); restart the job to evaluate on the new file");
  }

  std::shared_ptr<const TestSplit::Streamed> split_;
  IdxReader file_;
  Sha256 digest_;
  std::int64_t at_ = 0;
};

}  // namespace

TestSplit::TestSplit(TensorData data) : data_(std::move(data)) {}

TestSplit::TestSplit(std::shared_ptr<const Streamed> streamed) : streamed_(std::move(streamed)) {}

std::int64_t TestSplit::size() const { return streamed_ ? streamed_->rows : data_.size(); }

ExampleSource TestSplit::examples() const {
  if (streamed_) return {size(), [s = streamed_] { return std::make_unique<StreamedImages>(s); }};
  return held_examples(data_);
}

TensorData TestSplit::all() const {
  if (!streamed_) return data_;
  return examples().open()->next(size());
}

std::int64_t TestSplit::resident_bytes() const {
  const TensorData& held = streamed_ ? TensorData{torch::Tensor(), streamed_->labels} : data_;
  std::int64_t bytes = 0;
  for (const auto* t : {&held.features, &held.labels}) {
    if (t->defined()) bytes += t->numel() * static_cast<std::int64_t>(t->element_size());
  }
  return bytes;
}

void apply_scaling(TensorData& data, const FeatureScaling& scaling) {
  if (!data.features.defined() || data.size() == 0) return;
  if (scaling.mean.size() == 1) {
    data.features = (data.features - scaling.mean[0]) / scaling.stddev[0];
    return;
  }
  const auto cols = data.features.size(1);
  if (static_cast<std::int64_t>(scaling.mean.size()) != cols || scaling.stddev.size() != scaling.mean.size()) {
    throw Error::invalid_argument("scaling: " + std::to_string(scaling.mean.size()) + " column statistics for " +
                                  std::to_string(cols) + " columns");
  }
  auto as_tensor = [](const std::vector<double>& v) {
    return torch::from_blob(const_cast<double*>(v.data()), {static_cast<std::int64_t>(v.size())}, torch::kDouble)
        .to(torch::kFloat);
  };
  data.features = (data.features - as_tensor(scaling.mean)) / as_tensor(scaling.stddev);
}

void write_shard(const std::string& dir, const DatasetSplits& unscaled, const std::vector<std::int64_t>& rows) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const TensorData part = select_rows(unscaled.train, rows);
  if (unscaled.format == "idx") {
    const torch::Tensor pixels = part.features.mul(255.0).round_().clamp_(0, 255).to(torch::kUInt8).contiguous();
    IdxArray images{{part.size(), part.features.size(2), part.features.size(3)}, {}};
    images.data.assign(pixels.data_ptr<std::uint8_t>(), pixels.data_ptr<std::uint8_t>() + pixels.numel());
    const torch::Tensor labels = part.labels.to(torch::kUInt8).contiguous();
    IdxArray label_array{{part.size()}, {}};
    label_array.data.assign(labels.data_ptr<std::uint8_t>(), labels.data_ptr<std::uint8_t>() + labels.numel());
    write_file_atomically((fs::path(dir) / "train-images-idx3-ubyte").string(), encode_idx(images));
    write_file_atomically((fs::path(dir) / "train-labels-idx1-ubyte").string(), encode_idx(label_array));
    return;
  }
  if (unscaled.format != "csv") throw Error::invalid_argument("shards of '" + unscaled.format + "' data cannot be written");
  auto quote = [](const std::string& field) {
    if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
    std::string q = "\"";
    for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  const std::string label = unscaled.label_column.empty() ? "label" : unscaled.label_column;
  std::string text;
  for (const auto& name : unscaled.feature_names) text += quote(name) + ",";
  text += quote(label) + "\n";
  const torch::Tensor features = part.features.contiguous();
  const float* x = features.data_ptr<float>();
  const std::int64_t cols = features.size(1);
  char buf[32];
  for (std::int64_t r = 0; r < part.size(); ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      std::snprintf(buf, sizeof buf, "%.9g,", static_cast<double>(x[r * cols + c]));
      text += buf;
    }
    text += quote(unscaled.class_names.at(static_cast<std::size_t>(part.labels[r].item<std::int64_t>()))) + "\n";
  }
  write_file_atomically((fs::path(dir) / "data.csv").string(), text);
}

TensorData read_shard(const std::string& dir, const ShardFormat& format) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw Error::not_found("data: no folder " + dir);
  TensorData data;
  if (format.format == "idx") {
    const std::string xp = find_idx_file(dir, "train-images-idx3-ubyte");
    const std::string yp = find_idx_file(dir, "train-labels-idx1-ubyte");
    data = {idx_images(read_idx(xp), xp), idx_labels(read_idx(yp), yp, format.num_classes)};
    if (data.features.size(0) != data.size()) throw Error::corruption(dir + ": image and label counts differ");
    const std::vector<std::int64_t> shape(data.features.sizes().begin() + 1, data.features.sizes().end());
    if (shape != format.feature_shape) {
      throw Error::invalid_argument(dir + ": images of another shape than the job's model expects");
    }
  } else if (format.format == "csv") {
    const std::string path = (fs::path(dir) / "data.csv").string();
    if (!fs::exists(path)) throw Error::not_found("data: no " + path);
    const CsvDataset csv = read_csv_dataset(path, format.label_column, format.class_names);
    if (format.feature_shape.size() != 1 ||
        static_cast<std::int64_t>(csv.feature_names.size()) != format.feature_shape[0]) {
      throw Error::invalid_argument(path + ": " + std::to_string(csv.feature_names.size()) +
                                    " feature columns, the job's model expects " +
                                    std::to_string(format.feature_shape.empty() ? 0 : format.feature_shape[0]));
    }
    data = csv_tensors(csv);
  } else {
    throw Error::invalid_argument("data: unknown shard format '" + format.format + "'");
  }
  if (data.size() == 0) throw Error::invalid_argument("data: " + dir + " holds no examples");
  apply_scaling(data, format.scaling);
  return data;
}

}  // namespace fedtrack
