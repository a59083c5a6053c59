// The model card in checkpoints and the ONNX export built from it.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/parameters.h"

namespace fedtrack {
namespace {

ModelCard image_card(const std::string& model) {
  ModelCard card;
  card.model = model;
  card.input_shape = {1, 28, 28};
  card.num_classes = 10;
  card.data_format = "idx";
  card.dataset = "fashion-mnist";
  card.scaling_mean = {0.2860};
  card.scaling_stddev = {0.3530};
  card.class_names = fashion_mnist_class_names();
  return card;
}

std::string checkpoint_of(const ModelCard& card, bool with_card = true) {
  torch::manual_seed(1);
  auto model = make_model(card.model, {card.input_shape, card.num_classes});
  return checkpoint_bytes(parameters_from_module(*model.ptr()), with_card ? &card : nullptr);
}

TEST(ModelCard, RoundTripsThroughTheCheckpoint) {
  ModelCard card;
  card.model = "mlp";
  card.input_shape = {3};
  card.num_classes = 2;
  card.data_format = "csv";
  card.dataset = "csv";
  card.scaling_mean = {1.5, -2.25, 1e-9};
  card.scaling_stddev = {0.5, 3, 7};
  card.feature_names = {"age", "income", "h\xc3\xa9ight, cm"};
  card.class_names = {"no", "yes"};
  const std::string bytes = checkpoint_of(card);
  const auto back = parse_model_card(bytes, "ckpt");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->model, "mlp");
  EXPECT_EQ(back->input_shape, card.input_shape);
  EXPECT_EQ(back->num_classes, 2);
  EXPECT_EQ(back->data_format, "csv");
  EXPECT_EQ(back->dataset, "csv");
  EXPECT_EQ(back->scaling_mean, card.scaling_mean);
  EXPECT_EQ(back->scaling_stddev, card.scaling_stddev);
  EXPECT_EQ(back->feature_names, card.feature_names);
  EXPECT_EQ(back->class_names, card.class_names);
  // Same bytes every time (no timestamps), and still what torch::load reads.
  EXPECT_EQ(bytes, checkpoint_of(card));
  auto model = make_model("mlp", {{3}, 2});
  std::istringstream in(bytes);
  auto module = model.ptr();
  torch::load(module, in);
  torch::manual_seed(1);
  auto original = make_model("mlp", {{3}, 2});
  const Parameters a = parameters_from_module(*module), b = parameters_from_module(*original.ptr());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a.tensors[i], b.tensors[i])) << a.names[i];
}

TEST(ModelCard, ACheckpointWithoutACardStillLoadsButCannotBeExported) {
  const ModelCard card = image_card("mlp");
  const std::string old = checkpoint_of(card, false);
  EXPECT_FALSE(parse_model_card(old, "old.pt").has_value());
  auto model = make_model("mlp", {card.input_shape, 10});
  EXPECT_NO_THROW(parse_checkpoint(old, parameters_from_module(*model.ptr()), "old.pt"));
  try {
    export_onnx(old, {"old.pt"});
    FAIL() << "exported a checkpoint without a card";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("old.pt: this checkpoint has no model card"), std::string::npos) << e.what();
  }
}

TEST(ModelCard, JobParams) {
  const auto params = model_card_params(image_card("cnn"));
  std::map<std::string, std::string> m(params.begin(), params.end());
  EXPECT_EQ(m["model.input_shape"], "1x28x28");
  EXPECT_EQ(m["model.scaling_mean"], "0.286");
  EXPECT_EQ(m["model.scaling_stddev"], "0.353");
  EXPECT_EQ(m["model.class_names"].substr(0, 20), "T-shirt/top,Trouser,");
  EXPECT_EQ(m.count("model.feature_names"), 0u);
}

onnx::ModelProto parsed(const OnnxExport& e) {
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromString(e.bytes));
  return proto;
}

std::string meta(const onnx::ModelProto& p, const std::string& key) {
  for (const auto& e : p.metadata_props()) {
    if (e.key() == key) return e.value();
  }
  return "<none>";
}

TEST(OnnxExport, BuiltInsPassTheChecker) {
  for (const std::string model : {"mlp", "cnn"}) {
    OnnxExportOptions options{"ckpt"};
    options.metadata = {{"fedtrack.job_id", "job-1"}};
    const OnnxExport e = export_onnx(checkpoint_of(image_card(model)), options);
    const onnx::ModelProto p = parsed(e);
    EXPECT_NO_THROW(onnx::checker::check_model(p)) << model;
    EXPECT_EQ(e.nodes.front(), "Sub") << model;
    EXPECT_EQ(e.nodes[1], "Div") << model;
    EXPECT_EQ(p.graph().output(0).name(), "logits");
    EXPECT_EQ(meta(p, "fedtrack.model"), model);
    EXPECT_EQ(meta(p, "fedtrack.job_id"), "job-1");
    EXPECT_EQ(meta(p, "class_names").substr(0, 16), "[\"T-shirt/top\",\"");
    EXPECT_EQ(p.opset_import(0).version(), 13);
  }
  OnnxExportOptions int8{"q"};
  int8.int8_weights = true;
  const OnnxExport q = export_onnx(checkpoint_of(image_card("cnn")), int8);
  EXPECT_NO_THROW(onnx::checker::check_model(parsed(q)));
  EXPECT_EQ(std::count(q.nodes.begin(), q.nodes.end(), "DequantizeLinear"), 5);  // 2 Conv + 3 Linear
  const std::vector<std::string> cnn = export_onnx(checkpoint_of(image_card("cnn")), {"c"}).nodes;
  EXPECT_EQ(std::count(cnn.begin(), cnn.end(), "Conv"), 2);
  EXPECT_EQ(std::count(cnn.begin(), cnn.end(), "MaxPool"), 2);
}

// A registered model: one Sequential member that forward applies.
struct SeqNetImpl : torch::nn::Module {
  explicit SeqNetImpl(torch::nn::Sequential body, bool extra = false)
      : layers(register_module("layers", std::move(body))), extra_(extra) {}
  torch::Tensor forward(torch::Tensor x) {
    x = layers->forward(x);
    return extra_ ? x * 2 : x;
  }
  torch::nn::Sequential layers;
  bool extra_;
};
TORCH_MODULE(SeqNet);

TEST(OnnxExport, ASequentialOfSupportedLayersExportsAndAnUnsupportedModuleIsNamed) {
  register_model("onnx_test_seq", [](const ModelInput& in) {
    return torch::nn::AnyModule(SeqNet(torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(in.feature_shape[0], 4, 3).padding(1)),
        torch::nn::BatchNorm2d(4), torch::nn::ReLU(), torch::nn::AvgPool2d(2), torch::nn::Dropout(0.2),
        torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(1)),
        torch::nn::Flatten(), torch::nn::Linear(4 * 13 * 13, in.num_classes))));
  });
  const OnnxExport e = export_onnx(checkpoint_of(image_card("onnx_test_seq")), {"seq"});
  EXPECT_NO_THROW(onnx::checker::check_model(parsed(e)));
  EXPECT_EQ(std::count(e.nodes.begin(), e.nodes.end(), "BatchNormalization"), 1);

  register_model("onnx_test_tanh", [](const ModelInput& in) {
    return torch::nn::AnyModule(SeqNet(torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(in.num_features(), 8),
                                                             torch::nn::Tanh(), torch::nn::Linear(8, in.num_classes))));
  });
  try {
    export_onnx(checkpoint_of(image_card("onnx_test_tanh")), {"tanh"});
    FAIL() << "exported Tanh";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("module onnx_test_tanh.2 (torch::nn::Tanh)"), std::string::npos) << e.what();
  }

  // A forward that does more than its Sequential is not guessed at.
  register_model("onnx_test_extra", [](const ModelInput& in) {
    return torch::nn::AnyModule(
        SeqNet(torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(in.num_features(), in.num_classes)), true));
  });
  try {
    export_onnx(checkpoint_of(image_card("onnx_test_extra")), {"extra"});
    FAIL() << "exported a custom forward";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("its forward does more than apply its Sequential layers"), std::string::npos)
        << e.what();
  }
}

TEST(OnnxExport, ACheckpointOfAnotherArchitectureIsRefused) {
  ModelCard card = image_card("cnn");
  torch::manual_seed(1);
  auto mlp = make_model("mlp", {card.input_shape, 10});
  const std::string bytes = checkpoint_bytes(parameters_from_module(*mlp.ptr()), &card);  // mlp tensors, card says cnn
  try {
    export_onnx(bytes, {"wrong.pt"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("do not fit model 'cnn'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(export_onnx(checkpoint_of(image_card("mlp")), {"x", 12}), Error);  // opset below 13
}

TEST(OnnxExport, AForgedCardCannotMakeItBuildAHugeModel) {
  torch::manual_seed(1);
  auto small = make_model("mlp", {{1, 28, 28}, 10});
  ModelCard card = image_card("mlp");
  card.input_shape = {1, 65536, 65536};  // mlp's first layer alone would be 4 TiB
  try {
    export_onnx(checkpoint_bytes(parameters_from_module(*small.ptr()), &card), {"forged.pt"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("forged.pt: model card: input shape 1x65536x65536 is over 2^20 values"),
              std::string::npos) << e.what();
  }
  card = image_card("mlp");
  card.scaling_stddev = {0};
  EXPECT_THROW(export_onnx(checkpoint_bytes(parameters_from_module(*small.ptr()), &card), {"zero.pt"}), Error);
}

}  // namespace
}  // namespace fedtrack
