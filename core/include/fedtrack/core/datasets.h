// Datasets as tensors: Fashion-MNIST / MNIST from IDX files, or a CSV table,
// split into a training set (to be partitioned among clients) and the
// held-out test set the server evaluates on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/training.h"

namespace fedtrack {

// The standardization the loaders apply, (x - mean) / stddev, computed on the
// whole training split: one value for images, one per column for tables.
// The network server sends it to clients so their shards are scaled alike.
struct FeatureScaling {
  std::vector<double> mean;
  std::vector<double> stddev;
};

// The held-out test split as evaluation reads it, a pass at a time, in
// batches. Either held in memory as float32 features, or, for the images
// the network server evaluates on, streamed from the IDX file on every pass:
// only the labels stay in memory (the pixels were 31 MB of float32 for
// Fashion-MNIST), each batch's bytes are read from the file and scaled by
// the same tensor operations load_dataset applies to the whole split,
// element by element, so every batch is bit-identical to load_dataset's
// test rows. A pass checks the file still holds the bytes it held when the
// split was loaded (SHA-256 of the rows read): a file changed under a
// running job is Error(kCorruption) naming it, never silently different
// metrics.
class TestSplit {
 public:
  struct Streamed;  // datasets.cpp

  TestSplit() = default;
  // Features as the model takes them, held in memory.
  explicit TestSplit(TensorData data);
  explicit TestSplit(std::shared_ptr<const Streamed> streamed);

  std::int64_t size() const;
  // Passes over the split, in batches.
  ExampleSource examples() const;
  // Every example at once (for a streamed split, a float32 copy read now).
  TensorData all() const;
  // Bytes held between passes (a streamed split: its labels).
  std::int64_t resident_bytes() const;
  bool streamed() const { return streamed_ != nullptr; }

 private:
  TensorData data_;
  std::shared_ptr<const Streamed> streamed_;
};

struct DatasetSplits {
  TensorData train;
  TestSplit test;
  std::vector<std::int64_t> feature_shape;  // per example: {1, 28, 28} or {k}
  std::int64_t num_classes = 0;
  std::string description;                  // for progress output
  std::string format;                       // "idx" or "csv": what a shard of it is written as
  FeatureScaling scaling;
  std::vector<std::string> feature_names;   // csv columns
  std::vector<std::string> class_names;     // csv label values, by class index
  std::string label_column;                 // csv
};

// The folder a dataset is read from when `data.path` is empty.
std::string default_dataset_path(const std::string& dataset);

// Images are scaled to [0, 1] then standardized with the training set's mean
// and standard deviation; CSV features are standardized per column the same
// way. `seed` drives the CSV test split when there is no test file.
// Errors name the dataset, path and problem.
// `scale` false: features as stored (images in [0, 1]); `scaling` is still
// computed, for apply_scaling.
DatasetSplits load_dataset(const DataSpec& spec, std::uint64_t seed, bool scale = true);

// What the network server holds: load_dataset's test split (scaled) and its
// scaling, with `train` empty. For images the training split is never built
// as tensors: its mean and std come from a histogram of the raw IDX bytes
// streamed 64 KiB at a time (the same values load_dataset computes), and the
// test images are streamed from their file on each evaluation (TestSplit),
// so the server's data memory is the test labels and one batch.
// CSV tables are read whole, as load_dataset does (they are small).
DatasetSplits load_test_split(const DataSpec& spec, std::uint64_t seed);

void apply_scaling(TensorData& data, const FeatureScaling& scaling);

// What a client needs to read its shard as the server reads the dataset.
struct ShardFormat {
  std::string format;                       // "idx" or "csv"
  std::vector<std::int64_t> feature_shape;
  FeatureScaling scaling;
  std::vector<std::string> class_names;     // csv
  std::string label_column;                 // csv
  std::int64_t num_classes = 0;             // idx: labels must be below it (0 = unchecked)
};

// Writes rows `rows` of an unscaled training split into folder `dir` in the
// dataset's own format: train-images-idx3-ubyte + train-labels-idx1-ubyte,
// or data.csv with a header (label as its class name).
void write_shard(const std::string& dir, const DatasetSplits& unscaled, const std::vector<std::int64_t>& rows);

// Reads a shard folder (write_shard's, or the user's own files in the same
// format) and scales it. Error(kNotFound) without data, kInvalidArgument
// when its shape or columns do not match the job's, kCorruption (naming the
// file and the first bad record) for a label outside the job's classes.
TensorData read_shard(const std::string& dir, const ShardFormat& format);

}  // namespace fedtrack
