#include "fedtrack/connectors/versioning_commands.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <ostream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/model_repository.h"
#include "fedtrack/versioning/repository_url.h"

namespace fedtrack {

namespace {

// Restores into a temporary file beside `out`, checks the md5 the promotion
// recorded, then renames: a mismatch writes nothing.
RestoreResult restore_checked(const RestoreArgs& args, const std::string& rev, const std::string& expected_md5) {
  const std::string tmp = args.out + ".fedtrack-restore-" + std::to_string(::getpid());
  RestoreResult r;
  try {
    r = restore_model(args.repo, rev, args.path, tmp);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  if (!expected_md5.empty() && r.md5 != expected_md5) {
    std::filesystem::remove(tmp, ec);
    throw Error::corruption("revision " + rev + " holds md5 " + r.md5 + " but the promotion recorded " + expected_md5);
  }
  std::filesystem::rename(tmp, args.out, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    const std::string what = "--out " + args.out + ": cannot write it: " + ec.message();
    throw ec == std::errc::permission_denied ? Error::permission_denied(what) : Error::invalid_argument(what);
  }
  return r;
}

}  // namespace

std::string find_model_repository(const std::string& repo, const std::string& path) {
  if (!repo.empty()) return repo;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::current_path(ec);
  for (; !ec && !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / ".git", ec)) {
      if (fs::is_directory(dir / ".dvc", ec) && fs::exists(dir / (path + ".dvc"), ec)) return dir.string();
      break;  // the enclosing git repository is not a model repository
    }
    if (dir == dir.root_path()) break;
  }
  return kDefaultModelRepository;
}

int restore_command(const RestoreArgs& given, std::ostream& out, std::ostream& /*err*/) {
  RestoreArgs args = given;
  // A git URL is fetched into its cache (repository_url.h) once the
  // revision is known: --alias without --repo uses the repository the
  // promoted run records.
  args.repo = find_model_repository(given.repo, given.path);
  std::string rev = args.rev, expected, what = args.rev;
  const int ways = !args.rev.empty() + !args.alias.empty() + !args.stage.empty() + !args.version.empty();
  if (ways != 1) throw Error::invalid_argument("give exactly one of --rev, --alias, --stage, --version");
  if (args.rev.empty() && args.model_name.empty()) {
    throw Error::invalid_argument("--alias, --stage and --version need --model-name");
  }
  if (!args.alias.empty()) {
    const MlflowConfig config = MlflowConfig::from_environment(args.tracking_uri);
    if (config.tracking_uri.empty()) {
      throw Error::invalid_argument("--alias needs a tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI");
    }
    MlflowClient client(config);
    const ModelVersion mv = client.get_model_version_by_alias(args.model_name, args.alias);
    const MlflowRun run = client.get_run(mv.run_id);
    const Lineage lineage = Lineage::from_model_version(mv.tags, run.tags);
    rev = lineage.commit;
    expected = lineage.md5;
    if (rev.empty() || expected.empty()) {
      throw Error::failed_precondition(args.model_name + "@" + args.alias + " (version " + mv.version +
                                       ") has no fedtrack lineage tags");
    }
    what = args.model_name + " alias " + args.alias + " (registry version " + mv.version + ")";
    if (given.repo.empty() && is_git_url(lineage.repo)) args.repo = lineage.repo;
  }
  args.repo = local_repository(args.repo);
  if (!args.stage.empty()) {
    const GtoVersion v = gto_stage(args.repo, args.model_name, args.stage);
    rev = v.commit;
    what = args.model_name + " stage " + args.stage + " (" + v.tag + (v.version.empty() ? "" : ", " + v.version) + ")";
  } else if (!args.version.empty()) {
    rev = args.model_name + "@" + args.version;
    what = rev;
  }
  const RestoreResult r = restore_checked(args, rev, expected);
  out << "restored " << args.path << " at " << what << " (commit " << r.commit.substr(0, 12) << ", md5 "
      << r.md5 << ", " << r.size << " bytes, from the " << r.source << ") to " << args.out << std::endl;
  return 0;
}

int history_command(const HistoryArgs& given, std::ostream& out, std::ostream& /*err*/) {
  HistoryArgs args = given;
  args.repo = local_repository(find_model_repository(given.repo, "models/global.pt"));
  const auto entries = model_history(args.repo);
  if (args.json) {
    nlohmann::json rounds = nlohmann::json::array();
    for (const auto& e : entries) {
      rounds.push_back({{"job_id", e.job_id}, {"round", e.round}, {"tag", e.tag}, {"commit", e.commit},
                        {"md5", e.md5}, {"metrics", e.metrics}});
    }
    out << nlohmann::json{{"rounds", rounds}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
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
}

}  // namespace fedtrack
