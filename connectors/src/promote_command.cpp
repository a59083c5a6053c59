#include "fedtrack/connectors/promote_command.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <regex>

#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "fedtrack/versioning/round_reachability.h"
#include "fedtrack/connectors/versioning_commands.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

struct Gate {
  std::string text;
  std::string metric;
  std::string op;
  double threshold = 0;
};

Gate parse_gate(const std::string& text) {
  static const std::regex re(R"(\s*([\w./:\- ]+?)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+|nan|inf)\s*)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    throw Error::invalid_argument("--require '" + text + "': expected METRIC OP VALUE, e.g. 'eval_accuracy>=0.85'");
  }
  return {text, m[1], m[2], std::strtod(m[3].str().c_str(), nullptr)};
}

bool holds(double value, const std::string& op, double threshold) {
  if (op == ">=") return value >= threshold;
  if (op == "<=") return value <= threshold;
  if (op == ">") return value > threshold;
  if (op == "<") return value < threshold;
  return value == threshold;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string tag_of(const MlflowRun& run, const std::string& key) {
  auto it = run.tags.find(key);
  return it == run.tags.end() ? "" : it->second;
}

bool is_round_run(const MlflowRun& run) { return run.tags.count("mlflow.parentRunId") > 0; }

// The job's parent run, from --run, --job or the latest finished job.
MlflowRun find_job(MlflowClient& client, const std::string& experiment_id, const PromoteArgs& args) {
  if (!args.run_id.empty()) return client.get_run(args.run_id);  // a job's run or a single round's
  std::string filter = "attributes.status = 'FINISHED'";
  if (!args.job_id.empty()) filter = std::string("tags.`") + lineage_tag::kJobId + "` = '" + args.job_id + "'";
  for (const auto& run : client.search_runs({experiment_id}, filter, {"attributes.start_time DESC"})) {
    if (!is_round_run(run) && !Lineage::from_run_tags(run.tags).job_id.empty()) return run;
  }
  throw Error::not_found(args.job_id.empty() ? "no finished fedtrack job in experiment '" + args.experiment + "'"
                                             : "no job '" + args.job_id + "' in experiment '" + args.experiment + "'");
}

struct Outputs {
  std::vector<std::pair<std::string, std::string>> items;
  void set(const std::string& k, const std::string& v) {
    for (auto& [key, value] : items) {
      if (key == k) {
        value = v;
        return;
      }
    }
    items.emplace_back(k, v);
  }
};

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::app);
  if (!f) throw Error::unavailable("cannot append to " + path);
  f << text;
}

}  // namespace

int promote_command(const PromoteArgs& given, std::ostream& out, std::ostream& err) {
  PromoteArgs args = given;  // args.repo becomes the local folder checked below
  Outputs o;
  o.set("promoted", "false");
  int status = 0;
  std::exception_ptr failure;
  std::vector<std::string> failed;
  std::string summary_table;
  try {
    if (args.experiment.empty() || args.model_name.empty()) {
      throw Error::invalid_argument("--experiment and --model-name are required");
    }
    if (args.mode != "max" && args.mode != "min") throw Error::invalid_argument("--mode must be max or min");
    check_gto_name(args.model_name);
    if (!args.stage.empty()) check_gto_name(args.stage);
    std::vector<Gate> gates;
    for (const auto& r : args.require) gates.push_back(parse_gate(r));
    const MlflowConfig config = MlflowConfig::from_environment(args.tracking_uri);
    if (config.tracking_uri.empty()) {
      throw Error::invalid_argument("no tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI");
    }
    MlflowClient client(config);
    const auto experiment = client.get_experiment_by_name(args.experiment);
    if (!experiment) throw Error::not_found("no MLflow experiment '" + args.experiment + "'");

    // --- the candidate: the job's best round on --metric ---
    const MlflowRun job = find_job(client, experiment->experiment_id, args);
    std::vector<MlflowRun> rounds;
    if (is_round_run(job)) {
      rounds.push_back(job);
    } else {
      rounds = client.search_runs({experiment->experiment_id}, "tags.mlflow.parentRunId = '" + job.info.run_id + "'",
                                  {"attributes.start_time ASC"});
    }
    std::optional<MlflowRun> best;
    for (const auto& r : rounds) {
      auto it = r.metrics.find(args.metric);
      if (it == r.metrics.end() || std::isnan(it->second)) continue;
      const double v = it->second, b = best ? best->metrics.at(args.metric) : 0;
      if (!best || (args.mode == "max" ? v > b : v < b)) best = r;
    }
    if (!best) throw Error::not_found("no round of run " + job.info.run_id + " has metric '" + args.metric + "'");
    const MlflowRun& candidate = *best;
    const double value = candidate.metrics.at(args.metric);
    const Lineage lineage = Lineage::from_run_tags(candidate.tags);
    const std::string& commit = lineage.commit;
    const std::string& md5 = lineage.md5;
    if (!lineage.has_commit()) {
      throw Error::failed_precondition("round run " + candidate.info.run_id +
                                       " carries no versioning lineage (" + lineage_tag::kGitCommit + " / " +
                                       lineage_tag::kDvcMd5 + ")");
    }
    o.set("run_id", candidate.info.run_id);
    o.set("job_id", lineage.job_id);
    o.set("round", lineage.round > 0 ? std::to_string(lineage.round) : tag_of(candidate, lineage_tag::kRound));
    o.set("commit", commit);
    o.set("md5", md5);
    o.set(args.metric, number(value));

    // --- gates ---
    for (const auto& g : gates) {
      auto it = candidate.metrics.find(g.metric);
      if (it == candidate.metrics.end()) {
        failed.push_back(g.text + ": the candidate has no metric '" + g.metric + "'");
        continue;
      }
      o.set(g.metric, number(it->second));
      if (!holds(it->second, g.op, g.threshold)) {
        failed.push_back(g.text + ": " + g.metric + " is " + number(it->second));
      }
    }
    std::string champion_value = "none";
    if (!args.better_than.empty()) {
      try {
        const ModelVersion champion = client.get_model_version_by_alias(args.model_name, args.better_than);
        const MlflowRun champion_run = client.get_run(champion.run_id);
        auto it = champion_run.metrics.find(args.metric);
        if (it != champion_run.metrics.end()) {
          champion_value = number(it->second);
          o.set("champion_" + args.metric, champion_value);
          o.set("champion_version", champion.version);
          const bool better = args.mode == "max" ? value > it->second : value < it->second;
          if (!better) {
            failed.push_back("--better-than " + args.better_than + ": " + args.metric + " " + number(value) +
                             " does not beat " + args.better_than + "'s " + champion_value + " (version " +
                             champion.version + ")");
          }
        }
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kNotFound) throw;  // no champion yet: nothing to beat
      }
    }
    summary_table = "| | run | " + args.metric + " |\n|---|---|---|\n| candidate | " + candidate.info.run_id + " | " +
                    number(value) + " |\n| " + (args.better_than.empty() ? std::string("champion") : args.better_than) +
                    " | | " + champion_value + " |\n";
    if (failed.empty()) {
      // Never "passes" for a round nobody can fetch: its commit must be in
      // the repository (--repo, else the one the run records) and its object
      // in the cache or the DVC remote.
      if (args.repo.empty()) args.repo = lineage.repo.empty() ? kDefaultModelRepository : lineage.repo;
      const RoundReachability reach = check_round_reachable(args.repo, commit, args.path, md5);
      args.repo = reach.repo;
      (args.json ? err : out) << "round " << lineage.round << "'s commit " << commit.substr(0, 12) << " is in "
          << redact_uri(given.repo.empty() ? lineage.repo : given.repo) << "; its model (md5 " << md5 << ") in " << reach.object << std::endl;
    }
    if (!failed.empty()) {
      for (const auto& f : failed) err << "fedtrack: gate failed: " << f << std::endl;
      status = 3;
    } else if (args.dry_run) {
      out << "dry run: round run " << candidate.info.run_id << " (" << args.metric << "=" << number(value)
          << ") passes every gate; nothing changed" << std::endl;
      o.set("would_promote", "true");
    } else {
      // --- promote ---
      const std::string tmp = (fs::temp_directory_path() / ("fedtrack-promote-" + std::to_string(::getpid()))).string();
      const RestoreResult restored = restore_model(args.repo, commit, args.path, tmp);
      std::string bytes;
      try {
        bytes = read_file(tmp);
      } catch (...) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
      }
      std::error_code ignored;
      fs::remove(tmp, ignored);
      if (restored.md5 != md5) {
        throw Error::corruption("commit " + commit + " holds md5 " + restored.md5 + " but the run records " + md5);
      }
      const std::string name = fs::path(args.path).filename().string();
      const auto listed = client.list_artifacts(candidate.info.artifact_uri, "model");
      if (std::find(listed.begin(), listed.end(), "model/" + name) == listed.end()) {
        client.upload_artifact(candidate.info.artifact_uri, "model/" + name, bytes);
      }
      try {
        client.get_registered_model(args.model_name);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kNotFound) throw;
        client.create_registered_model(args.model_name);
      }
      const ModelVersion mv =
          client.create_model_version(args.model_name, candidate.info.artifact_uri + "/model", candidate.info.run_id);
      Lineage registered;
      registered.commit = commit;
      registered.md5 = md5;
      registered.path = args.path;
      for (const auto& [k, v] : registered.to_run_tags()) client.set_model_version_tag(args.model_name, mv.version, k, v);
      if (!args.alias.empty()) client.set_registered_model_alias(args.model_name, args.alias, mv.version);

      std::vector<std::string> tags;
      std::string version;
      if (auto existing = gto_version_at(args.repo, args.model_name, commit)) {
        version = existing->version;
      } else {
        version = gto_next_version(args.repo, args.model_name);
        tags.push_back(gto_register(args.repo, args.model_name, version, commit, ""));
      }
      if (!args.stage.empty()) tags.push_back(gto_assign(args.repo, args.model_name, args.stage, version, commit, ""));
      // The version tag too when it exists already: a promotion whose push failed is pushed by its retry.
      std::vector<std::string> to_push = tags;
      if (tags.empty() || tags.front() != args.model_name + "@" + version) to_push.push_back(args.model_name + "@" + version);
      const bool pushed = push_tags_if_remote(args.repo, to_push) && !tags.empty();
      o.set("promoted", "true");
      o.set("version", version);
      o.set("registry_version", mv.version);
      if (!args.alias.empty()) o.set("alias", args.alias);
      if (!args.stage.empty()) o.set("stage", args.stage);
      out << "promoted round run " << candidate.info.run_id << " (" << args.metric << "=" << number(value) << ") as "
          << args.model_name << " " << version << " (registry version " << mv.version << ")"
          << (args.alias.empty() ? "" : ", alias " + args.alias) << (args.stage.empty() ? "" : ", stage " + args.stage)
          << (pushed ? "; tags pushed to origin" : "") << std::endl;
    }
  } catch (...) {
    failure = std::current_exception();  // reported by the CLI's error edge once the outputs are written
  }
  // CI outputs, whatever the outcome.
  try {
    std::string lines;
    for (const auto& [k, v] : o.items) lines += k + "=" + v + "\n";
    if (const char* gh = std::getenv("GITHUB_OUTPUT"); gh && *gh) append(gh, lines);
    if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY"); summary && *summary && !summary_table.empty()) {
      append(summary, "### fedtrack promote " + args.model_name + ": " +
                          (status == 0 && !failure ? std::string(args.dry_run ? "would promote" : "promoted") : "not promoted") +
                          "\n\n" + summary_table + "\n");
    }
    if (!args.dotenv.empty()) {
      std::string dotenv;
      for (const auto& [k, v] : o.items) {
        std::string key;
        for (char c : k) key += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
        dotenv += "FEDTRACK_" + key + "=" + v + "\n";
      }
      write_file_atomically(args.dotenv, dotenv);
    }
    if (args.json) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [k, v] : o.items) j[k] = v;
      j["gates_failed"] = failed;
      out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    }
  } catch (const std::exception& e) {
    if (!failure) throw;
    err << "warning: the CI outputs could not be written: " << to_valid_utf8(redact_secrets(e.what())) << std::endl;
  }
  if (failure) std::rethrow_exception(failure);
  return status;
}

}  // namespace fedtrack
