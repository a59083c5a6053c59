// The model card: what a checkpoint needs besides its tensors to be rebuilt
// and used — which registered model it is, the shape of one raw input, the
// standardization the job trained with, and for tables the feature columns
// and class names. No job id: two runs of one job write the same bytes
// (lineage lives in the model repository). Every checkpoint a job writes carries it (see
// checkpoint_bytes in parameters.h) and the job logs it as MLflow params.
// Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fedtrack {

struct ModelCard {
  static constexpr std::int64_t kVersion = 1;
  std::string model;                      // registry name: "mlp", "cnn", a registered one
  std::vector<std::int64_t> input_shape;  // one example: {1, 28, 28} or {k}
  std::int64_t num_classes = 0;
  std::string data_format;                // "idx" (pixels in [0, 1]) or "csv" (feature columns)
  std::string dataset;                    // "fashion-mnist", "mnist", "csv"
  // The model sees (x - mean) / stddev: one value for images (broadcast over
  // every pixel), one per column for tables.
  std::vector<double> scaling_mean;
  std::vector<double> scaling_stddev;
  std::vector<std::string> feature_names;  // csv columns, in input order
  std::vector<std::string> class_names;    // by class index (fashion-mnist's labels too)
};

// The card as MLflow params of the job: model.input_shape ("1x28x28"),
// model.num_classes, model.data_format, model.scaling_mean, model.scaling_stddev
// (comma-separated), model.feature_names, model.class_names (comma-separated,
// only when known).
std::vector<std::pair<std::string, std::string>> model_card_params(const ModelCard& card);

// Fashion-MNIST's ten labels, by class index.
const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace fedtrack
