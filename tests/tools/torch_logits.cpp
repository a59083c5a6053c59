// Test helper: LibTorch's logits for raw input, the reference the ONNX export
// is compared with (tests/integration/test_onnx_export.py).
//   torch_logits CHECKPOINT INPUT.f32 OUTPUT.f32
// INPUT: float32 raw examples (pixels in [0, 1] or csv columns), row-major
// [N, ...input_shape]; OUTPUT: float32 logits [N, classes]. The checkpoint's
// model card gives the model and the scaling, applied as the loaders do.
#include <torch/torch.h>

#include <iostream>

#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/parameters.h"

int main(int argc, char** argv) {
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
