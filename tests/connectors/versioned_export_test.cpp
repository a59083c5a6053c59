// versioning.export with a model that cannot export: the job stops before
// round 1 (exit 2) naming the module, with nothing trained, committed or journalled.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fedtrack/connectors/exit_status.h"
#include "fedtrack/connectors/run_command.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

struct TanhNetImpl : torch::nn::Module {
  explicit TanhNetImpl(const ModelInput& in)
      : layers(register_module("layers", torch::nn::Sequential(torch::nn::Flatten(),
                                                               torch::nn::Linear(in.num_features(), 8),
                                                               torch::nn::Tanh(),
                                                               torch::nn::Linear(8, in.num_classes)))) {}
  torch::Tensor forward(torch::Tensor x) { return layers->forward(x); }
  torch::nn::Sequential layers;
};
TORCH_MODULE(TanhNet);

TEST(VersionedExport, AModelThatCannotExportStopsTheJobBeforeRoundOne) {
  register_model("export_test_tanh", [](const ModelInput& in) { return torch::nn::AnyModule(TanhNet(in)); });
  ::unsetenv("MLFLOW_TRACKING_URI");
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-versioned-export-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  RunArgs args;
  args.overrides = {"model=export_test_tanh", "rounds=1", "clients.count=2", "data.limit_train=200",
                    "data.limit_test=100", "versioning.export=[onnx]",
                    "versioning.repo=" + (dir / "repo").string(), "tracking.journal=" + (dir / "j.db").string(),
                    "server.state=" + (dir / "state").string()};
  std::ostringstream out, err;
  try {
    run_command(args, out, err);
    FAIL() << "the job ran";
  } catch (const Error& e) {
    EXPECT_EQ(exit_status_for(e.code()), 2) << e.what();
    const std::string what = e.what();
    EXPECT_NE(what.find("versioning.export: onnx: "), std::string::npos) << what;
    EXPECT_NE(what.find("module export_test_tanh.2 (torch::nn::Tanh)"), std::string::npos) << what;
  }
  EXPECT_EQ(err.str().find("round 1"), std::string::npos) << err.str();
  EXPECT_FALSE(fs::exists(dir / "repo")) << "the model repository was created";
  EXPECT_FALSE(fs::exists(dir / "j.db")) << "the journal was created";

  // Without versioning.export the same model trains and is versioned.
  args.overrides.erase(args.overrides.begin() + 5);
  std::ostringstream out2, err2;
  EXPECT_EQ(run_command(args, out2, err2), 0) << err2.str();
  EXPECT_TRUE(fs::exists(dir / "repo" / "models" / "global.pt.dvc"));
  fs::remove_all(dir);
}

TEST(VersionedExport, AnExportOnTheModelsOwnPathIsRefusedBeforeTheJob) {
  ::unsetenv("MLFLOW_TRACKING_URI");
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-versioned-export-path-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  RunArgs args;
  args.overrides = {"versioning.path=models/global.onnx", "versioning.export=[onnx]",
                    "versioning.repo=" + (dir / "repo").string(), "tracking.journal=" + (dir / "j.db").string()};
  std::ostringstream out, err;
  try {
    run_command(args, out, err);
    FAIL() << "the job ran";
  } catch (const Error& e) {
    EXPECT_EQ(exit_status_for(e.code()), 2) << e.what();
    EXPECT_NE(std::string(e.what()).find("the model's own path"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace fedtrack
