// `fedtrack restore` and `fedtrack history`: reading the model repository.
// Torch-free.
#pragma once

#include <iosfwd>
#include <string>

namespace fedtrack {

// Without --repo (repo empty), the model repository is found as git finds
// its repository: the first folder from the current one upward that holds
// .git, when it is a model repository (it also holds .dvc and PATH.dvc);
// else "fedtrack-models" (versioning.repo's default).
inline constexpr const char* kDefaultModelRepository = "fedtrack-models";
std::string find_model_repository(const std::string& repo, const std::string& path);

struct RestoreArgs {
  std::string repo;  // empty: find_model_repository
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
  std::string repo;  // empty: find_model_repository (with the default path models/global.pt)
  bool json = false;
};

// Return 0; throw fedtrack::Error (3 unknown revision / missing .dvc /
// object nowhere; 5 corruption). Restore writes nothing on failure.
int restore_command(const RestoreArgs& args, std::ostream& out, std::ostream& err);
int history_command(const HistoryArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fedtrack
