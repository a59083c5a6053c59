// Datasets as tensors: Fashion-MNIST / MNIST from IDX files, or a CSV table,
// split into a training set (to be partitioned among clients) and the
// held-out test set the server evaluates on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/training.h"

namespace fedtrack {

struct DatasetSplits {
  TensorData train;
  TensorData test;
  std::vector<std::int64_t> feature_shape;  // per example: {1, 28, 28} or {k}
  std::int64_t num_classes = 0;
  std::string description;                  // for progress output
};

// The folder a dataset is read from when `data.path` is empty.
std::string default_dataset_path(const std::string& dataset);

// Images are scaled to [0, 1] then standardized with the training set's mean
// and standard deviation; CSV features are standardized per column the same
// way. `seed` drives the CSV test split when there is no test file.
// Errors name the dataset, path and problem.
DatasetSplits load_dataset(const DataSpec& spec, std::uint64_t seed);

}  // namespace fedtrack
