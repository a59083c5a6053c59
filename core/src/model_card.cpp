#include "fedtrack/core/model_card.h"

#include "fedtrack/core/number_text.h"

namespace fedtrack {

namespace {

template <typename T, typename F>
std::string joined(const std::vector<T>& items, const char* sep, F text) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += text(items[i]);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> model_card_params(const ModelCard& card) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("model.input_shape", joined(card.input_shape, "x", [](std::int64_t d) { return std::to_string(d); }));
  out.emplace_back("model.num_classes", std::to_string(card.num_classes));
  out.emplace_back("model.data_format", card.data_format);
  out.emplace_back("model.scaling_mean", joined(card.scaling_mean, ",", number_text));
  out.emplace_back("model.scaling_stddev", joined(card.scaling_stddev, ",", number_text));
  const auto same = [](const std::string& s) { return s; };
  if (!card.feature_names.empty()) out.emplace_back("model.feature_names", joined(card.feature_names, ",", same));
  if (!card.class_names.empty()) out.emplace_back("model.class_names", joined(card.class_names, ",", same));
  return out;
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace fedtrack
