#include "fedtrack/connectors/versioning_commands.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ostream>

#include "fedtrack/connectors/run_command.h"
#include "fedtrack/core/error.h"
#include "fedtrack/versioning/model_repository.h"

namespace fedtrack {

int restore_command(const RestoreArgs& args, std::ostream& out, std::ostream& err) {
  try {
    const RestoreResult r = restore_model(args.repo, args.rev, args.path, args.out);
    out << "restored " << args.path << " at " << args.rev << " (commit " << r.commit.substr(0, 12) << ", md5 "
        << r.md5 << ", " << r.size << " bytes, from the " << r.source << ") to " << args.out << std::endl;
    return 0;
  } catch (const Error& e) {
    err << "fedtrack: " << e.what() << std::endl;
    return exit_status_for(static_cast<int>(e.code()));
  }
}

int history_command(const HistoryArgs& args, std::ostream& out, std::ostream& err) {
  try {
    const auto entries = model_history(args.repo);
    if (args.json) {
      nlohmann::json rounds = nlohmann::json::array();
      for (const auto& e : entries) {
        rounds.push_back({{"job_id", e.job_id}, {"round", e.round}, {"tag", e.tag}, {"commit", e.commit},
                          {"md5", e.md5}, {"metrics", e.metrics}});
      }
      out << nlohmann::json{{"rounds", rounds}}.dump() << std::endl;
      return 0;
    }
    if (entries.empty()) out << "no round commits in " << args.repo << std::endl;
    for (const auto& e : entries) {
      char line[512];
      std::snprintf(line, sizeof line, "round %3d  %s  %s  md5 %s", e.round, e.commit.substr(0, 12).c_str(),
                    e.tag.c_str(), e.md5.c_str());
      out << line;
      for (const char* key : {"eval_accuracy", "eval_loss"}) {
        auto it = e.metrics.find(key);
        if (it != e.metrics.end()) {
          std::snprintf(line, sizeof line, "  %s=%.4f", key, it->second);
          out << line;
        }
      }
      out << "\n";
    }
    return 0;
  } catch (const Error& e) {
    err << "fedtrack: " << e.what() << std::endl;
    return exit_status_for(static_cast<int>(e.code()));
  }
}

}  // namespace fedtrack
