#include "fedtrack/core/models.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

#include <map>
#include <mutex>

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

namespace F = torch::nn::functional;

struct MlpImpl : torch::nn::Module {
  MlpImpl(std::int64_t in, std::int64_t classes)
      : fc1(register_module("fc1", torch::nn::Linear(in, 256))),
        fc2(register_module("fc2", torch::nn::Linear(256, 128))),
        fc3(register_module("fc3", torch::nn::Linear(128, classes))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = x.flatten(1);
    x = torch::relu(fc1(x));
    x = torch::relu(fc2(x));
    return fc3(x);
  }
  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Mlp);

// LeNet-5 style: two 5x5 convolutions with max-pooling, then three linear layers.
struct CnnImpl : torch::nn::Module {
  CnnImpl(std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t classes)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 6, 5).padding(2)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)))),
        fc1(register_module("fc1", torch::nn::Linear(16 * ((height / 2 - 4) / 2) * ((width / 2 - 4) / 2), 120))),
        fc2(register_module("fc2", torch::nn::Linear(120, 84))),
        fc3(register_module("fc3", torch::nn::Linear(84, classes))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = F::max_pool2d(torch::relu(conv1(x)), F::MaxPool2dFuncOptions(2));
    x = F::max_pool2d(torch::relu(conv2(x)), F::MaxPool2dFuncOptions(2));
    x = x.flatten(1);
    x = torch::relu(fc1(x));
    x = torch::relu(fc2(x));
    return fc3(x);
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Cnn);

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelFactory> factories;
  Registry() {
    factories["mlp"] = [](const ModelInput& in) {
      return torch::nn::AnyModule(Mlp(in.num_features(), in.num_classes));
    };
    factories["cnn"] = [](const ModelInput& in) {
      if (in.feature_shape.size() != 3 || in.feature_shape[1] < 12 || in.feature_shape[2] < 12) {
        throw Error::invalid_argument("model 'cnn' needs image input [channels, height >= 12, width >= 12]");
      }
      return torch::nn::AnyModule(
          Cnn(in.feature_shape[0], in.feature_shape[1], in.feature_shape[2], in.num_classes));
    };
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::int64_t ModelInput::num_features() const {
  std::int64_t n = 1;
  for (auto d : feature_shape) n *= d;
  return n;
}

void register_model(const std::string& name, ModelFactory factory) {
  if (name.empty() || !factory) throw Error::invalid_argument("register_model: empty name or factory");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.factories.emplace(name, std::move(factory)).second) {
    throw Error(ErrorCode::kAlreadyExists, "model '" + name + "' is already registered");
  }
}

torch::nn::AnyModule make_model(const std::string& name, const ModelInput& input) {
  ModelFactory factory;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      std::string known;
      for (const auto& [n, f] : r.factories) known += (known.empty() ? "" : ", ") + n;
      throw Error::not_found("unknown model '" + name + "' (known: " + known + ")");
    }
    factory = it->second;
  }
  if (input.num_classes < 2) throw Error::invalid_argument("a classifier needs at least 2 classes");
  return factory(input);
}

std::vector<std::string> model_names() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [n, f] : r.factories) names.push_back(n);
  return names;
}

}  // namespace fedtrack
