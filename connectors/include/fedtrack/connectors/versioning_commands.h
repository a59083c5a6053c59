// `fedtrack restore` and `fedtrack history`: reading the model repository.
// Torch-free.
#pragma once

#include <iosfwd>
#include <string>

namespace fedtrack {

struct RestoreArgs {
  std::string repo = "fedtrack-models";
  std::string rev;
  std::string path = "models/global.pt";
  std::string out;
  // Or by promotion (fedtrack promote): one of alias / stage / version.
  std::string model_name;
  std::string alias;         // MLflow alias -> version -> round run -> commit + md5
  std::string stage;         // latest GTO stage tag NAME#STAGE#N
  std::string version;       // GTO version tag NAME@vX.Y.Z
  std::string tracking_uri;  // for --alias; default MLFLOW_TRACKING_URI
};

struct HistoryArgs {
  std::string repo = "fedtrack-models";
  bool json = false;
};

// Exit 0 on success; 3 unknown revision / missing .dvc / object nowhere;
// 5 corruption. Writes nothing on failure.
int restore_command(const RestoreArgs& args, std::ostream& out, std::ostream& err);
int history_command(const HistoryArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fedtrack
