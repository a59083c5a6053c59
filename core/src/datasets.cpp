#include "fedtrack/core/datasets.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "fedtrack/core/csv.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/idx.h"

namespace fedtrack {
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

torch::Tensor idx_labels(const IdxArray& a, const std::string& path) {
  if (a.dims.size() != 1) throw Error::corruption(path + ": expected a 1-dimensional label file");
  auto t = torch::empty({a.dims[0]}, torch::kUInt8);
  std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t.to(torch::kLong);
}

DatasetSplits load_idx_dataset(const DataSpec& spec) {
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
  auto [train_x, train_x_path] = read("train-images-idx3-ubyte");
  auto [train_y, train_y_path] = read("train-labels-idx1-ubyte");
  auto [test_x, test_x_path] = read("t10k-images-idx3-ubyte");
  auto [test_y, test_y_path] = read("t10k-labels-idx1-ubyte");
  DatasetSplits out;
  out.train = {idx_images(train_x, train_x_path), idx_labels(train_y, train_y_path)};
  out.test = {idx_images(test_x, test_x_path), idx_labels(test_y, test_y_path)};
  if (out.train.features.size(0) != out.train.size() || out.test.features.size(0) != out.test.size()) {
    throw Error::corruption(spec.dataset + ": image and label counts differ in " + dir);
  }
  out.train = head(out.train, spec.limit_train);
  out.test = head(out.test, spec.limit_test);
  const double mean = out.train.features.mean().item<double>();
  const double stddev = out.train.features.std().item<double>();
  out.train.features.sub_(mean).div_(stddev);
  out.test.features.sub_(mean).div_(stddev);
  out.feature_shape = {1, out.train.features.size(2), out.train.features.size(3)};
  out.num_classes = std::max(out.train.labels.max().item<std::int64_t>(),
                             out.test.labels.max().item<std::int64_t>()) + 1;
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

DatasetSplits load_csv_dataset(const DataSpec& spec, std::uint64_t seed) {
  if (spec.path.empty()) throw Error::invalid_argument("csv: data.path must name the CSV file");
  const CsvDataset train_csv = read_csv_dataset(spec.path, spec.label);
  DatasetSplits out;
  TensorData all = csv_tensors(train_csv);
  if (!spec.test_path.empty()) {
    const CsvDataset test_csv = read_csv_dataset(spec.test_path, spec.label, train_csv.class_names);
    if (test_csv.feature_names != train_csv.feature_names) {
      throw Error::invalid_argument("csv: " + spec.test_path + " has different feature columns than " + spec.path);
    }
    out.train = all;
    out.test = csv_tensors(test_csv);
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
    out.test = select_rows(all, test_rows);
  }
  out.train = head(out.train, spec.limit_train);
  out.test = head(out.test, spec.limit_test);
  const torch::Tensor mean = out.train.features.mean(0);
  torch::Tensor stddev = out.train.features.std(0);
  stddev = torch::where(stddev > 0, stddev, torch::ones_like(stddev));
  out.train.features = (out.train.features - mean) / stddev;
  out.test.features = (out.test.features - mean) / stddev;
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

DatasetSplits load_dataset(const DataSpec& spec, std::uint64_t seed) {
  if (spec.dataset == "fashion-mnist" || spec.dataset == "mnist") return load_idx_dataset(spec);
  if (spec.dataset == "csv") return load_csv_dataset(spec, seed);
  throw Error::invalid_argument("unknown dataset '" + spec.dataset +
                                "' (expected fashion-mnist, mnist or csv)");
}

}  // namespace fedtrack
