// Registering your own torch::nn::Module and running a federated job with it.
//
//   build/examples/custom_model_example [job.yaml] [--set key=value ...]
//
// The job file names the model by its registered name (`model: tiny-cnn`).
#include <torch/nn/functional/pooling.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <iostream>

#include "fedtrack/connectors/job_config.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/simulation.h"

// A small convolutional classifier: every submodule registered, forward takes
// [N, C, H, W] and returns logits [N, classes].
struct TinyCnnImpl : torch::nn::Module {
  TinyCnnImpl(std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t classes)
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 8, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(8 * (height / 4) * (width / 4), classes))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv(x));
    x = torch::nn::functional::max_pool2d(x, torch::nn::functional::MaxPool2dFuncOptions(4));
    return fc(x.flatten(1));
  }
  torch::nn::Conv2d conv;
  torch::nn::Linear fc;
};
TORCH_MODULE(TinyCnn);

class PrintRounds : public fedtrack::RoundListener {
 public:
  void on_round(const fedtrack::RoundSummary& s) override {
    std::cerr << "round " << s.round << "/" << s.total_rounds
              << " eval_accuracy=" << s.metrics.at("eval_accuracy") << "\n";
  }
};

int main(int argc, char** argv) {
  try {
    fedtrack::register_model("tiny-cnn", [](const fedtrack::ModelInput& in) {
      if (in.feature_shape.size() != 3) {
        throw fedtrack::Error::invalid_argument("tiny-cnn needs image input");
      }
      return torch::nn::AnyModule(
          TinyCnn(in.feature_shape[0], in.feature_shape[1], in.feature_shape[2], in.num_classes));
    });

    std::string job_path;
    std::vector<std::string> overrides = {"model=tiny-cnn"};
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--set" && i + 1 < argc) {
        overrides.push_back(argv[++i]);
      } else {
        job_path = arg;
      }
    }
    const fedtrack::JobSpec job = fedtrack::load_job(job_path, overrides);
    PrintRounds printer;
    fedtrack::JobRunOptions options;
    options.job_id = job.name + "-custom-model";
    options.listeners = {&printer};
    const fedtrack::JobResult result = fedtrack::run_simulation(job, options);
    std::cout << "test accuracy " << result.final_metrics.at("eval_accuracy") << "\n";
    return 0;
  } catch (const fedtrack::Error& e) {
    std::cerr << "custom-model: " << e.what() << "\n";
    return 2;
  }
}
