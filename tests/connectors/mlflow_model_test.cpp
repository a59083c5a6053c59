// The MLflow Model files fedtrack promote uploads: the exact MLmodel text
// (keys and signature as MLflow 3 writes them) and the environment files.
#include "mlflow_model.h"

#include <gtest/gtest.h>

namespace fedtrack {
namespace {

MlflowModelInfo fashion_info() {
  MlflowModelInfo info;
  info.card.model = "mlp";
  info.card.input_shape = {1, 28, 28};
  info.card.num_classes = 3;
  info.card.data_format = "idx";
  info.card.dataset = "fashion-mnist";
  info.card.scaling_mean = {0.286};
  info.card.scaling_stddev = {0.353};
  info.card.class_names = {"T-shirt/top", "Say \"hi\"", "bad\xff"};
  info.onnx_size = 1234;
  info.onnx_version = "1.12.0";
  info.run_id = "abc123";
  info.artifact_path = "model";
  info.model_uuid = "0123456789abcdef0123456789abcdef";
  info.utc_time_created = "2026-12-01 05:36:04.201271";
  info.metadata = {{"fedtrack.round", "2"}};
  return info;
}

TEST(MlflowModel, MlmodelTextIsMlflowsFormat) {
  EXPECT_EQ(mlflow_mlmodel_text(fashion_info()),
            "artifact_path: \"model\"\n"
            "flavors:\n"
            "  onnx:\n"
            "    code: null\n"
            "    data: model.onnx\n"
            "    onnx_version: \"1.12.0\"\n"
            "    providers:\n"
            "    - CPUExecutionProvider\n"
            "  python_function:\n"
            "    data: model.onnx\n"
            "    env:\n"
            "      conda: conda.yaml\n"
            "      virtualenv: python_env.yaml\n"
            "    loader_module: mlflow.onnx\n"
            "    python_version: '3.11'\n"
            "metadata:\n"
            "  fedtrack.model: \"mlp\"\n"
            "  fedtrack.dataset: \"fashion-mnist\"\n"
            "  fedtrack.input: \"pixels in [0, 1] (raw), scaled inside the graph\"\n"
            "  fedtrack.scaling_mean: [0.286]\n"
            "  fedtrack.scaling_stddev: [0.353]\n"
            "  class_names: [\"T-shirt/top\", \"Say \\\"hi\\\"\", \"bad\xef\xbf\xbd\"]\n"
            "  \"fedtrack.round\": \"2\"\n"
            "mlflow_version: 3.0.0\n"
            "model_size_bytes: 1234\n"
            "model_uuid: \"0123456789abcdef0123456789abcdef\"\n"
            "run_id: \"abc123\"\n"
            "signature:\n"
            "  inputs: \"[{\\\"name\\\": \\\"input\\\", \\\"type\\\": \\\"tensor\\\", \\\"tensor-spec\\\": "
            "{\\\"dtype\\\": \\\"float32\\\", \\\"shape\\\": [-1, 1, 28, 28]}}]\"\n"
            "  outputs: \"[{\\\"name\\\": \\\"logits\\\", \\\"type\\\": \\\"tensor\\\", \\\"tensor-spec\\\": "
            "{\\\"dtype\\\": \\\"float32\\\", \\\"shape\\\": [-1, 3]}}]\"\n"
            "  params: null\n"
            "utc_time_created: \"2026-12-01 05:36:04.201271\"\n");
}

TEST(MlflowModel, CsvCardListsFeatureColumns) {
  MlflowModelInfo info = fashion_info();
  info.card.data_format = "csv";
  info.card.input_shape = {2};
  info.card.feature_names = {"a\nb", "c"};
  info.card.scaling_mean = {1, 2.5};
  info.card.scaling_stddev = {3, 4};
  const std::string text = mlflow_mlmodel_text(info);
  EXPECT_NE(text.find("  feature_names: [\"a\\nb\", \"c\"]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  fedtrack.scaling_mean: [1, 2.5]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  fedtrack.input: \"csv feature columns (raw), scaled inside the graph\"\n"), std::string::npos);
  EXPECT_EQ(mlflow_signature_inputs(info.card),
            "[{\"name\": \"input\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 2]}}]");
}

TEST(MlflowModel, CharactersYamlRefusesOrFoldsAreEscaped) {
  MlflowModelInfo info = fashion_info();
  // DEL, U+0085 (NEL), U+009F, U+2028, U+2029, BOM, U+FFFE, U+FFFF, a tab, é and an emoji.
  info.card.class_names = {"a\x7f" "b\xc2\x85" "c\xc2\x9f" "d\xe2\x80\xa8" "e\xe2\x80\xa9" "f\xef\xbb\xbf"
                           "g\xef\xbf\xbe" "h\xef\xbf\xbf" "i\tj\xc3\xa9k\xf0\x9f\x98\x80"};
  const std::string text = mlflow_mlmodel_text(info);
  EXPECT_NE(text.find("  class_names: [\"a\\u007fb\\u0085c\\u009fd\\u2028e\\u2029f\\ufeffg\\ufffeh\\uffffi\\tj"
                      "\xc3\xa9k\xf0\x9f\x98\x80\"]\n"),
            std::string::npos)
      << text;
}

TEST(MlflowModel, EnvironmentFilesListOnnxruntime) {
  const auto files = mlflow_environment_files();
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].name, "conda.yaml");
  EXPECT_EQ(files[0].text,
            "channels:\n- conda-forge\ndependencies:\n- python=3.11\n- pip\n- pip:\n  - mlflow>=3.0\n  - numpy\n"
            "  - onnx>=1.12\n  - onnxruntime>=1.14\nname: mlflow-env\n");
  EXPECT_EQ(files[1].name, "python_env.yaml");
  EXPECT_EQ(files[1].text,
            "python: '3.11'\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\ndependencies:\n- -r requirements.txt\n");
  EXPECT_EQ(files[2].name, "requirements.txt");
  EXPECT_EQ(files[2].text, "mlflow>=3.0\nnumpy\nonnx>=1.12\nonnxruntime>=1.14\n");
}

TEST(MlflowModel, UuidAndTimeHaveMlflowsShape) {
  const std::string a = new_mlflow_model_uuid(), b = new_mlflow_model_uuid();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  const std::string t = mlflow_utc_now();
  ASSERT_EQ(t.size(), 26u) << t;
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], ' ');
  EXPECT_EQ(t[19], '.');
}

}  // namespace
}  // namespace fedtrack
