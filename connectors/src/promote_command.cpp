#include "fedtrack/connectors/promote_command.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <ostream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/versioning/gto_tags.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "ci_outputs.h"
#include "mlflow_model.h"
#include "mlflow_model_export.h"
#include "promotion.h"
#include "round_logged_model.h"
#include "fedtrack/versioning/round_reachability.h"
#include "fedtrack/versioning/dvc_artifacts.h"
#include "fedtrack/versioning/repository_url.h"
#include "fedtrack/versioning/dvc_artifacts.h"
#include "fedtrack/versioning/repository_url.h"
#include "fedtrack/connectors/versioning_commands.h"

namespace fedtrack {
namespace {

// --model-name by default: the artifact dvc.yaml declares for the model at
// the best round's commit (the job's name, versioning.artifact, or `global`
// in a repository written before fedtrack named artifacts), so GTO's tags
// and the MLflow registered model carry the name `dvc artifacts get` resolves.
// "" when there is no best round with a commit (decide_promotion says why).
std::string declared_model_name(const std::vector<MlflowRun>& rounds, const PromotionCriteria& criteria,
                                const PromoteArgs& args) {
  const MlflowRun* best = best_round(rounds, criteria);
  if (!best) return "";
  const Lineage l = Lineage::from_run_tags(best->tags);
  if (!l.has_commit()) return "";
  const std::string repo = !args.repo.empty() ? args.repo : (l.repo.empty() ? kDefaultModelRepository : l.repo);
  const std::string where = "round " + std::to_string(l.round) + "'s commit " + l.commit.substr(0, 12) + " in " +
                            redact_uri(repo);
  std::optional<std::string> name;
  try {
    name = declared_artifact(local_repository(repo), l.commit, args.path);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error::failed_precondition("no --model-name, and the model's name cannot be read from " + where + ": " +
                                     e.what() + "; pass --model-name, or --repo with the job's model repository");
  }
  if (!name) {
    throw Error::failed_precondition("no --model-name, and dvc.yaml at " + where + " declares no artifact with path " +
                                     args.path + "; pass --model-name");
  }
  check_gto_name(*name);
  return *name;
}

namespace fs = std::filesystem;

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

// Uploads the MLflow Model directory (MLmodel, model.onnx, environment files)
// into `dir` of the run beside the checkpoint, unless its MLmodel is there
// already (MLmodel goes last, so a directory that has it is complete). Returns
// false, with a warning on err, when the checkpoint cannot be exported (no
// model card, a module ONNX export does not support): the version is then
// registered with the checkpoint only, as before.
// `artifact_uri` is the run's artifact root, or a LoggedModel's (`dir` "",
// `model_id` set: written into MLmodel as MLflow 3 does).
bool upload_mlflow_model(MlflowClient& client, const std::string& artifact_uri, const std::string& run_id,
                         const std::string& model_id, const std::string& dir, const std::vector<std::string>& listed,
                         const std::string& checkpoint, const std::vector<std::pair<std::string, std::string>>& lineage,
                         std::ostream& err) {
  const auto at = [&](const std::string& file) { return dir.empty() ? file : dir + "/" + file; };
  if (std::find(listed.begin(), listed.end(), at(kMlflowModelFile)) != listed.end()) return true;
  std::string why;
  const auto files = mlflow_model_directory(
      {checkpoint, "the promoted checkpoint of run " + run_id, run_id, model_id, dir.empty() ? "model" : dir, lineage},
      why);
  if (!files) {
    err << "warning: no MLflow model for this version (registered with the checkpoint only): " << why << std::endl;
    return false;
  }
  for (const MlflowModelFile& f : *files) client.upload_artifact(artifact_uri, at(f.name), f.text);
  return true;
}

}  // namespace

int promote_command(const PromoteArgs& given, std::ostream& out, std::ostream& err) {
  PromoteArgs args = given;  // args.repo becomes the local folder checked below
  CiOutputs o;
  o.set("promoted", "false");
  int status = 0;
  std::exception_ptr failure;
  std::vector<std::string> failed;
  std::string summary_table;
  try {
    if (args.experiment.empty()) throw Error::invalid_argument("--experiment is required");
    if (args.mode != "max" && args.mode != "min") throw Error::invalid_argument("--mode must be max or min");
    if (!args.model_name.empty()) check_gto_name(args.model_name);
    if (!args.stage.empty()) check_gto_name(args.stage);
    PromotionCriteria criteria;
    criteria.metric = args.metric;
    criteria.mode = args.mode;
    criteria.holder_alias = args.better_than;
    for (const auto& r : args.require) criteria.gates.push_back(parse_gate(r));
    const MlflowConfig config = MlflowConfig::from_environment(args.tracking_uri);
    if (config.tracking_uri.empty()) {
      throw Error::invalid_argument("no tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI");
    }
    MlflowClient client(config);
    const auto experiment = client.get_experiment_by_name(args.experiment);
    if (!experiment) throw Error::not_found("no MLflow experiment '" + args.experiment + "'");

    // --- the candidate: the job's best round on --metric, gated, against the alias holder ---
    const MlflowRun job = find_job(client, experiment->experiment_id, args);
    std::vector<MlflowRun> rounds;
    if (is_round_run(job)) {
      rounds.push_back(job);
    } else {
      rounds = client.search_runs({experiment->experiment_id}, "tags.mlflow.parentRunId = '" + job.info.run_id + "'",
                                  {"attributes.start_time ASC"});
    }
    if (args.model_name.empty()) args.model_name = declared_model_name(rounds, criteria, args);
    std::optional<AliasHolder> holder;
    if (!args.better_than.empty() && best_round(rounds, criteria)) {
      holder = current_holder(client, args.model_name, args.better_than, args.metric);
    }
    const PromotionDecision decision = decide_promotion(rounds, "run " + job.info.run_id, criteria, holder);
    const MlflowRun& candidate = decision.candidate;
    const double value = decision.value;
    const Lineage& lineage = decision.lineage;
    const std::string& commit = lineage.commit;
    const std::string& md5 = lineage.md5;
    failed = decision.failed;
    o.set("run_id", candidate.info.run_id);
    o.set("job_id", lineage.job_id);
    o.set("round", lineage.round > 0 ? std::to_string(lineage.round) : tag_of(candidate, lineage_tag::kRound));
    o.set("commit", commit);
    o.set("md5", md5);
    o.set(args.metric, promotion_number(value));
    for (const auto& [metric, v] : decision.gate_values) o.set(metric, promotion_number(v));
    std::string champion_value = "none";
    if (decision.holder) {
      champion_value = promotion_number(*decision.holder->value);
      o.set("champion_" + args.metric, champion_value);
      o.set("champion_version", decision.holder->version);
    }
    summary_table = "| | run | " + args.metric + " |\n|---|---|---|\n| candidate | " + candidate.info.run_id + " | " +
                    promotion_number(value) + " |\n| " + (args.better_than.empty() ? std::string("champion") : args.better_than) +
                    " | | " + champion_value + " |\n";
    if (failed.empty()) {
      // Never "passes" for a round nobody can fetch: its commit must be in
      // the repository (--repo, else the one the run records) and its object
      // in the cache or the DVC remote.
      if (args.repo.empty()) args.repo = lineage.repo.empty() ? kDefaultModelRepository : lineage.repo;
      const RoundReachability reach = check_round_reachable(args.repo, commit, args.path, md5);
      args.repo = reach.repo;
      if (!given.model_name.empty()) {
        // A name dvc.yaml does not declare: GTO's tags will not resolve with `dvc artifacts get`.
        std::optional<std::string> declared;
        try {
          declared = declared_artifact(args.repo, commit, args.path);
        } catch (const Error&) {
        }
        if (declared && *declared != args.model_name) {
          err << "warning: --model-name " << args.model_name << " is not the artifact dvc.yaml declares for "
              << args.path << " at commit " << commit.substr(0, 12) << " ('" << *declared
              << "'): `dvc artifacts get` and `dvc.api.artifacts_show` will not find " << args.model_name
              << " by version or stage; leave --model-name out, or set versioning.artifact: " << args.model_name
              << " in the job" << std::endl;
        }
      }
      (args.json ? err : out) << "round " << lineage.round << "'s commit " << commit.substr(0, 12) << " is in "
          << redact_uri(given.repo.empty() ? lineage.repo : given.repo) << "; its model (md5 " << md5 << ") in " << reach.object << std::endl;
    }
    if (!failed.empty()) {
      for (const auto& f : failed) err << "fedtrack: gate failed: " << f << std::endl;
      status = 3;
    } else if (args.dry_run) {
      out << "dry run: round run " << candidate.info.run_id << " (" << args.metric << "=" << promotion_number(value)
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
      // The round's LoggedModel (tracking.log_models) holds these very
      // bytes: it is what gets registered, nothing is uploaded twice.
      const auto logged = round_logged_model(client, experiment->experiment_id, lineage);
      const std::string artifact_uri = logged ? logged->artifact_uri : candidate.info.artifact_uri;
      const std::string dir = logged ? "" : "model";
      const auto listed = client.list_artifacts(artifact_uri, dir);
      const auto at = [&](const std::string& file) { return dir.empty() ? file : dir + "/" + file; };
      if (!logged && std::find(listed.begin(), listed.end(), at(name)) == listed.end()) {
        client.upload_artifact(artifact_uri, at(name), bytes);
      }
      // The same directory is an MLflow Model (MLmodel at its root): the
      // registry version's source, loadable by mlflow.pyfunc and served by mlflow models serve.
      const bool mlflow_model = upload_mlflow_model(
          client, artifact_uri, candidate.info.run_id, logged ? logged->model_id : "", dir, listed, bytes,
          {{"fedtrack.job_id", lineage.job_id}, {"fedtrack.round", std::to_string(lineage.round)},
           {"fedtrack.git_commit", commit}, {"fedtrack.dvc_md5", md5}, {"fedtrack.checkpoint", at(name)}},
          err);
      try {
        client.get_registered_model(args.model_name);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kNotFound) throw;
        client.create_registered_model(args.model_name);
      }
      const ModelVersion mv =
          logged ? create_model_version_from_logged_model(client, args.model_name, logged->model_id, candidate.info.run_id)
                 : client.create_model_version(args.model_name, candidate.info.artifact_uri + "/model", candidate.info.run_id);
      if (logged) o.set("logged_model_id", logged->model_id);
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
      o.set("mlflow_model", mlflow_model ? "true" : "false");
      if (!args.alias.empty()) o.set("alias", args.alias);
      if (!args.stage.empty()) o.set("stage", args.stage);
      out << "promoted round run " << candidate.info.run_id << " (" << args.metric << "=" << promotion_number(value) << ") as "
          << args.model_name << " " << version << " (registry version " << mv.version << ")"
          << (logged ? " from logged model " + logged->model_id : std::string())
          << (args.alias.empty() ? "" : ", alias " + args.alias) << (args.stage.empty() ? "" : ", stage " + args.stage)
          << (pushed ? "; tags pushed to origin" : "") << std::endl;
    }
  } catch (...) {
    failure = std::current_exception();  // reported by the CLI's error edge once the outputs are written
  }
  // CI outputs, whatever the outcome.
  try {
    if (const char* gh = std::getenv("GITHUB_OUTPUT"); gh && *gh) append_github_output(gh, o);
    if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY"); summary && *summary && !summary_table.empty()) {
      append_step_summary(summary, "### fedtrack promote " + args.model_name + ": " +
                                       (status == 0 && !failure ? std::string(args.dry_run ? "would promote" : "promoted")
                                                                : "not promoted") +
                                       "\n\n" + summary_table + "\n");
    }
    if (!args.dotenv.empty()) write_dotenv(args.dotenv, o);
    if (args.json) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [k, v] : o.items()) j[k] = v;
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
