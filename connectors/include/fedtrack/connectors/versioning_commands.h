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
