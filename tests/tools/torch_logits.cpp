// Test helper: LibTorch's logits for raw input, the reference the ONNX export
// is compared with (tests/integration/test_onnx_export.py).
//   torch_logits CHECKPOINT INPUT.f32 OUTPUT.f32
//   torch_logits --custom CHECKPOINT MODEL.onnx
// The second form writes a checkpoint (with a Fashion-MNIST card) of the
// registered model "test_custom" — a Sequential of every supported layer,
// seeded weights and BatchNorm statistics — and exports it with the library
// (a user's program does the same: the fedtrack executable cannot rebuild a
// model it has not registered).
// INPUT: float32 raw examples (pixels in [0, 1] or csv columns), row-major
// [N, ...input_shape]; OUTPUT: float32 logits [N, classes]. The checkpoint's
// model card gives the model and the scaling, applied as the loaders do.
#include <torch/torch.h>

#include <iostream>

#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/parameters.h"

namespace {

struct CustomImpl : torch::nn::Module {
  explicit CustomImpl(const fedtrack::ModelInput& in)
      : body(register_module("body", torch::nn::Sequential(
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(in.feature_shape[0], 6, 3).padding(1)),
                                         torch::nn::BatchNorm2d(6), torch::nn::ReLU(),
                                         torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)),
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 8, 3).stride(2)),
                                         torch::nn::ReLU(), torch::nn::AvgPool2d(2), torch::nn::Dropout(0.3),
                                         torch::nn::Flatten(), torch::nn::Linear(8 * 3 * 3, 32),
                                         torch::nn::BatchNorm1d(32), torch::nn::ReLU(),
                                         torch::nn::Linear(32, in.num_classes)))) {}
  torch::Tensor forward(torch::Tensor x) { return body->forward(x); }
  torch::nn::Sequential body;
};
TORCH_MODULE(Custom);

int write_custom(const std::string& checkpoint, const std::string& onnx_path) {
  fedtrack::ModelCard card;
  card.model = "test_custom";
  card.input_shape = {1, 28, 28};
  card.num_classes = 10;
  card.data_format = "idx";
  card.dataset = "fashion-mnist";
  card.scaling_mean = {0.2860};
  card.scaling_stddev = {0.3530};
  card.class_names = fedtrack::fashion_mnist_class_names();
  torch::manual_seed(5);
  auto model = fedtrack::make_model(card.model, {card.input_shape, card.num_classes});
  {
    torch::NoGradGuard no_grad;
    for (auto& b : model.ptr()->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.5);
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2);
    }
  }
  const std::string bytes = fedtrack::checkpoint_bytes(fedtrack::parameters_from_module(*model.ptr()), &card);
  fedtrack::write_file_atomically(checkpoint, bytes);
  fedtrack::write_file_atomically(onnx_path, fedtrack::export_onnx(bytes, {checkpoint}).bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fedtrack::register_model("test_custom", [](const fedtrack::ModelInput& in) { return torch::nn::AnyModule(Custom(in)); });
  if (argc == 4 && std::string(argv[1]) == "--custom") {
    try {
      return write_custom(argv[2], argv[3]);
    } catch (const std::exception& e) {
      std::cerr << "torch_logits: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc != 4) {
    std::cerr << "usage: torch_logits CHECKPOINT INPUT.f32 OUTPUT.f32\n";
    return 2;
  }
  try {
    const std::string bytes = fedtrack::read_file(argv[1]);
    const auto card = fedtrack::parse_model_card(bytes, argv[1]);
    if (!card) throw std::runtime_error("no model card");
    auto model = fedtrack::make_model(card->model, {card->input_shape, card->num_classes});
    const auto layout = fedtrack::parameters_from_module(*model.ptr());
    fedtrack::load_parameters(*model.ptr(), fedtrack::parse_checkpoint(bytes, layout, argv[1]));
    model.ptr()->eval();
    std::string raw = fedtrack::read_file(argv[2]);
    std::int64_t per = 1;
    for (auto d : card->input_shape) per *= d;
    const auto n = static_cast<std::int64_t>(raw.size() / sizeof(float)) / per;
    std::vector<std::int64_t> shape{n};
    shape.insert(shape.end(), card->input_shape.begin(), card->input_shape.end());
    torch::Tensor x = torch::from_blob(raw.data(), shape, torch::kFloat32).clone();
    const auto vec = [](const std::vector<double>& v) {
      return torch::tensor(std::vector<float>(v.begin(), v.end()), torch::kFloat32);
    };
    x = (x - vec(card->scaling_mean)) / vec(card->scaling_stddev);
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = model.forward(x).contiguous();
    fedtrack::write_file_atomically(argv[3], std::string(static_cast<const char*>(logits.data_ptr()),
                                                         logits.numel() * sizeof(float)));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "torch_logits: " << e.what() << "\n";
    return 1;
  }
}
