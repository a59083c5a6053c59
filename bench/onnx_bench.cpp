// ONNX export: export time (fp32, int8), the two files' sizes, and LibTorch's
// forward latency (one thread, batch 1 and 256) on raw-scaled input — the
// baseline bench/onnx_bench.py sets onnxruntime beside. Prints one JSON line.
//   bench_onnx CHECKPOINT OUT_DIR
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "fedtrack/core/files.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/parameters.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double median_seconds(int reps, F f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: bench_onnx CHECKPOINT OUT_DIR\n";
    return 2;
  }
  torch::set_num_threads(1);
  const std::string bytes = fedtrack::read_file(argv[1]);
  const std::string dir = argv[2];
  fedtrack::OnnxExport fp32, int8;
  fedtrack::OnnxExportOptions o{argv[1]};
  const double export_fp32 = median_seconds(5, [&] { fp32 = fedtrack::export_onnx(bytes, o); });
  o.int8_weights = true;
  const double export_int8 = median_seconds(5, [&] { int8 = fedtrack::export_onnx(bytes, o); });
  fedtrack::write_file_atomically(dir + "/fp32.onnx", fp32.bytes);
  fedtrack::write_file_atomically(dir + "/int8.onnx", int8.bytes);

  const auto card = fp32.card;
  auto model = fedtrack::make_model(card.model, {card.input_shape, card.num_classes});
  fedtrack::load_parameters(*model.ptr(),
                            fedtrack::parse_checkpoint(bytes, fedtrack::parameters_from_module(*model.ptr()), argv[1]));
  model.ptr()->eval();
  torch::NoGradGuard no_grad;
  std::cout << "{\"model\": \"" << card.model << "\", \"export_fp32_s\": " << export_fp32
            << ", \"export_int8_s\": " << export_int8 << ", \"fp32_bytes\": " << fp32.bytes.size()
            << ", \"int8_bytes\": " << int8.bytes.size();
  for (std::int64_t batch : {1, 256}) {
    std::vector<std::int64_t> shape{batch};
    shape.insert(shape.end(), card.input_shape.begin(), card.input_shape.end());
    const torch::Tensor raw = torch::rand(shape);
    const float mean = static_cast<float>(card.scaling_mean[0]), stddev = static_cast<float>(card.scaling_stddev[0]);
    const int reps = batch == 1 ? 2000 : 50;
    // LibTorch's path includes the scaling, as the ONNX graph does.
    const double t = median_seconds(reps, [&] { model.forward((raw - mean) / stddev); });
    std::cout << ", \"torch_batch" << batch << "_s\": " << t;
  }
  std::cout << "}" << std::endl;
  return 0;
}
