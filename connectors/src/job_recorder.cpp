#include "job_recorder.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "fedtrack/connectors/job_config.h"
#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/source_commit.h"
#include "fedtrack/core/text.h"
#include "resolved_job.h"
#include "mlflow_model_export.h"
#include "source_info.h"

namespace fedtrack {

JobRecorder::JobRecorder(const JobSpec& spec, const std::string& job_path, std::ostream& err) : err_(err) {
  // The job's params name the MLflow server and experiment actually used:
  // tracking resolves what the job left empty from MLFLOW_* (the caller's
  // JobSpec stays as written).
  JobSpec job = spec;
  job.tracking.uri = MlflowConfig::resolve_tracking_uri(job.tracking.uri);
  experiment_ = ExperimentChoice::resolve(job.tracking.experiment);
  journal_path_ = job.tracking.journal;
  if (!job.tracking.uri.empty()) {
    client_ = std::make_unique<MlflowClient>(MlflowConfig::from_environment(job.tracking.uri));
  }
  required_ = job.tracking.required;
  if (client_ && !experiment_.id.empty()) check_experiment(job.tracking);  // fills in the name of one given by id
  job.tracking.experiment = experiment_.name;
  TrackingOptions& options = tracking_options_;
  options.experiment = experiment_.by_id && experiment_.name.empty() ? experiment_.id : experiment_.name;
  if (experiment_.by_id) options.experiment_id = experiment_.id;
  options.timeout_seconds = job.tracking.timeout;
  // Secrets never persist: URLs in the job's values (tracking.uri,
  // versioning.remote) lose their userinfo and credential query values
  // (TrackingListener redacts every stored value again).
  for (const auto& [k, v] : flatten_job(job)) job_params_.emplace_back(k, redact_secrets(v));
  for (const auto& [k, v] : job_params_) options.job_params.push_back({k, v});
  options.user = current_user();
  options.job_tags.push_back({"mlflow.source.type", "LOCAL"});
  options.job_tags.push_back({"mlflow.source.name", "fedtrack run" + (job_path.empty() ? std::string() : " " + job_path)});
  const std::string source = job_path.empty() ? "." : job_path;
  const std::string commit = checked_out_commit(source);
  if (!commit.empty()) options.job_tags.push_back({"mlflow.source.git.commit", commit});
  const SourceRepository repository = source_repository(source);
  if (!repository.repo_url.empty()) options.job_tags.push_back({"mlflow.source.git.repoURL", repository.repo_url});
  if (!repository.branch.empty()) options.job_tags.push_back({"mlflow.source.git.branch", repository.branch});
  options.job_tags.push_back({"fedtrack.version", fedtrack_version()});
  // The job as it runs, secrets removed: the parent run's job.yaml.
  options.job_file = resolved_job_yaml(job);
  options.warn = [this](const std::string& line) { err_ << line << std::endl; };
  uri_ = redact_uri(job.tracking.uri);  // for what is printed and committed; the client keeps the real one
  if (job.secure_aggregation.enabled()) secure_aggregation_ = job.secure_aggregation.mode;
  // tracking.log_models: the chosen rounds' models become MLflow LoggedModels
  // holding the checkpoint under the name it has in the model repository.
  model_options_.policy = parse_log_models(job.tracking.log_models);
  model_options_.checkpoint_name = std::filesystem::path(job.versioning.path).filename().string();
  if (model_options_.checkpoint_name.empty()) model_options_.checkpoint_name = "global.pt";
  model_options_.tags = options.job_tags;
  if (!options.user.empty()) model_options_.tags.push_back({"mlflow.user", options.user});
  model_options_.params = options.job_params;
  if (job.versioning.enabled) {
    versioning_ = std::make_unique<VersioningOptions>();
    VersioningOptions& v = *versioning_;
    v.repo = job.versioning.repo;
    v.path = job.versioning.path;
    v.remote = job.versioning.remote;
    v.push = job.versioning.push;
    v.author = job.versioning.author;
    v.artifact = job.versioning.artifact;  // "" = the job's name
    v.params = job_params_;
    v.log = [this](const std::string& line) { err_ << line << std::endl; };
    // Each export is a file beside the model: models/global.pt -> models/global.onnx.
    const std::filesystem::path model(v.path);
    for (const auto& format : job.versioning.exports) {
      const std::string file = model.stem().string() + (format == "onnx-int8" ? ".int8.onnx" : ".onnx");
      exports_.emplace_back(format, (model.parent_path() / file).string());
      if (exports_.back().second == v.path) {
        throw Error::invalid_argument("versioning.export: " + format + " would write " + v.path +
                                      ", the model's own path; give versioning.path another name");
      }
    }
  } else if (!job.versioning.exports.empty()) {
    err_ << "warning: versioning.export is ignored: versioning.enabled is false" << std::endl;
  }
  // A job that exports ONNX gives each LoggedModel the MLflow Model directory too.
  if (std::any_of(exports_.begin(), exports_.end(), [](const auto& e) { return e.first == "onnx"; })) {
    model_options_.files = [this](const RoundSummary& s) { return logged_model_files(s); };
  }
  if (required_) check_tracking_reachable(job.tracking);  // before anything is trained or written
}

void JobRecorder::check_tracking_reachable(const TrackingSpec& tracking) {
  if (!client_) {
    throw Error::invalid_argument(
        "tracking.required: no tracking URI (set tracking.uri or MLFLOW_TRACKING_URI, or drop --require-tracking)");
  }
  // One read the job's first write depends on: it proves the server answers
  // and takes the credentials, before anything is trained or written.
  client_->set_deadline(MlflowClient::Clock::now() +
                        std::chrono::duration_cast<MlflowClient::Clock::duration>(
                            std::chrono::duration<double>(std::max(tracking.timeout, 1.0))));
  try {
    if (experiment_.by_id) {
      client_->get_experiment(experiment_.id);
    } else {
      client_->get_experiment_by_name(tracking_options_.experiment);
    }
  } catch (const Error& e) {
    client_->set_deadline(std::nullopt);
    throw Error(e.code(), "tracking.required: MLflow at " + redact_uri(tracking.uri) +
                              " cannot take the job's records: " + e.what());
  }
  client_->set_deadline(std::nullopt);
}

void JobRecorder::check_experiment(const TrackingSpec& tracking) {
  client_->set_deadline(MlflowClient::Clock::now() +
                        std::chrono::duration_cast<MlflowClient::Clock::duration>(
                            std::chrono::duration<double>(std::max(tracking.timeout, 1.0))));
  const std::string server = "MLflow at " + redact_uri(tracking.uri);
  std::optional<Experiment> found;
  try {
    found = experiment_.by_id ? client_->get_experiment(experiment_.id) : client_->get_experiment_by_name(experiment_.name);
  } catch (const Error&) {
    // Away or refusing us: the writes wait in the journal (tracking.required
    // fails the job in check_tracking_reachable); a wrong id is refused
    // when they are sent.
    client_->set_deadline(std::nullopt);
    return;
  }
  client_->set_deadline(std::nullopt);
  if (experiment_.by_id) {
    if (!found) {
      throw Error::invalid_argument("MLFLOW_EXPERIMENT_ID=" + experiment_.id + ": " + server +
                                    " has no experiment with that id (set an existing id, or MLFLOW_EXPERIMENT_NAME)");
    }
    if (found->lifecycle_stage == "deleted") {
      throw Error::failed_precondition("MLFLOW_EXPERIMENT_ID=" + experiment_.id + ": experiment '" + found->name +
                                       "' is deleted; restore it or choose another");
    }
    experiment_.name = found->name;
  } else if (found && found->experiment_id != experiment_.id) {
    throw Error::invalid_argument("MLFLOW_EXPERIMENT_ID=" + experiment_.id + " does not match experiment '" +
                                  experiment_.name + "' (id " + found->experiment_id + ") that " + experiment_.origin +
                                  " names at " + server + "; unset one of them");
  }
}

void JobRecorder::check_nothing_pending(const Report& report) const {
  if (!required_ || report.tracking.is_null()) return;
  const auto pending = report.tracking.value("pending_writes", std::int64_t{0});
  if (pending == 0) return;
  throw Error::unavailable("tracking.required: " + std::to_string(pending) + " write(s) still pending in " +
                           journal_path_ + " (MLflow at " + uri_ + " did not take them); send them with: fedtrack sync --journal " +
                           journal_path_);
}

void JobRecorder::open() {
  if (tracking_) return;
  // The repository first: when it refuses (not a model repository, locked
  // by another job), no journal was created for nothing.
  if (versioning_ && !repository_) repository_ = std::make_unique<ModelRepository>(*versioning_);
  journal_ = std::make_unique<Journal>(journal_path_);
  tracking_ = std::make_unique<TrackingListener>(*journal_, client_.get(), tracking_options_);
  if (model_options_.policy != LogModels::kNone) {
    models_ = std::make_unique<LoggedModels>(*journal_, model_options_);
    tracking_->set_logged_models(models_.get());
  }
}

void JobRecorder::check_resume(const ResumeCheck& check) {
  open();
  const std::string round = std::to_string(check.round);
  const std::string& bytes = check.model->checkpoint_bytes();
  const auto corrupt = [&](const std::string& what, const std::string& rev) {
    std::string fix = "move " + check.state_path + " aside and start the job again without --resume";
    if (!rev.empty()) {
      fix = "round " + round + "'s committed model is intact (`fedtrack restore --repo " + repository_->root() +
            " --rev " + rev + " --out round-" + round + ".pt`); " + fix;
    }
    return Error::corruption("state file " + check.state_path + ": round " + round + " " + what +
                             ": the state file is corrupt; " + fix);
  };
  if (repository_) {
    const std::string tag = ModelRepository::tag_name(check.job_id, check.round);
    const auto committed = recorded_md5(repository_->root(), "refs/tags/" + tag, repository_->options().path);
    const std::string md5 = md5_hex(bytes);
    if (committed && *committed != md5) {
      throw corrupt("model has md5 " + md5 + ", git tag " + tag + " recorded " + *committed, tag);
    }
  }
  std::string journalled;
  try {
    journalled = tracking_->recorded_model_sha(TrackingListener::round_key(check.job_id, check.round));
  } catch (const std::exception& e) {
    err_ << "warning: tracking: cannot read round " << round << "'s model sha256 from the journal (" << e.what()
         << "); the resumed model is not checked against it" << std::endl;
  }
  if (!journalled.empty()) {
    const std::string sha = sha256_hex(bytes);
    if (journalled != sha) {
      throw corrupt("model has sha256 " + sha + ", the tracking journal " + journal_->path() + " recorded " +
                        journalled,
                    repository_ ? ModelRepository::tag_name(check.job_id, check.round) : "");
    }
  }
}

namespace {

OnnxExportOptions export_options(const std::string& format, const std::string& source) {
  OnnxExportOptions o;
  o.source = source;
  o.int8_weights = format == "onnx-int8";
  return o;
}

}  // namespace

void JobRecorder::on_job_start(const JobStart& start) {
  if (!exports_.empty()) {
    // versioning.export: a model that cannot export stops the job here,
    // before round 1 and before anything is recorded: the untrained model
    // of the job's card goes through the same export every round takes.
    if (!start.model_card) {
      throw Error::failed_precondition("versioning.export: the job's checkpoints carry no model card to export from");
    }
    const ModelCard& card = *start.model_card;
    std::string untrained;
    try {
      torch::nn::AnyModule any = make_model(card.model, ModelInput{card.input_shape, card.num_classes});
      untrained = checkpoint_bytes(parameters_from_module(*any.ptr()), &card);
    } catch (const Error& e) {
      throw Error(e.code(), std::string("versioning.export: ") + e.what());
    }
    for (const auto& [format, path] : exports_) {
      try {
        export_onnx(untrained, export_options(format, "model '" + card.model + "'"));
      } catch (const Error& e) {
        throw Error(e.code(), "versioning.export: " + format + ": " + e.what() +
                                  "; drop versioning.export to version this model without an ONNX file");
      }
    }
  }
  open();
  start_ = start;
  if (models_) models_->on_job_start(start);
  if (repository_) {
    // The params the job computed (the model card) follow the job file's, as on the parent run.
    auto params = job_params_;
    params.insert(params.end(), start.params.begin(), start.params.end());
    repository_->set_params(std::move(params));
  }
  tracking_->on_job_start(start);
}

void JobRecorder::on_initial_evaluation(const Metrics& metrics) { tracking_->on_initial_evaluation(metrics); }

void JobRecorder::on_round(const RoundSummary& s) {
  std::vector<KeyValue> lineage;
  if (repository_) {
    // Commit first. The round's run was made ahead (with the parent run
    // for round 1, with the previous round's records after that), so its
    // id is known here when MLflow answered then; the run key always is.
    Lineage links;
    links.run_key = TrackingListener::round_key(start_.job_id, s.round);
    links.run_id = tracking_->round_run_id(s.round);
    links.parent_run_id = tracking_->job_run_id();
    links.tracking_uri = uri_;
    links.aggregation = secure_aggregation_;
    const RoundCommit c = repository_->commit_round(start_.job_id, start_.name, s.round, s.total_rounds,
                                                    s.model->checkpoint_bytes(), s.metrics, links, export_round(s));
    if (c.reused) {
      err_ << "versioning: round " << s.round << " was committed before the stop; its commit "
           << c.commit.substr(0, 12) << " and tag " << c.tag << " stay" << std::endl;
    }
    commits_.push_back(c);
    Lineage recorded;
    recorded.commit = c.commit;
    recorded.tag = c.tag;
    recorded.md5 = c.md5;
    recorded.path = c.path;
    recorded.repo = repository_->location();
    for (const auto& [k, v] : recorded.to_run_tags()) lineage.push_back({k, v});
  }
  // Then one tracking call: one journal transaction, one sync pass.
  tracking_->record_round(s, lineage);
}

// The round's exports, each carrying the round's lineage (job id, round,
// its tag and the checkpoint's DVC md5; the git commit holds the file, so
// it cannot name it) as metadata_props.
std::vector<RoundOutput> JobRecorder::export_round(const RoundSummary& s) const {
  std::vector<RoundOutput> out;
  if (exports_.empty()) return out;
  const std::string& checkpoint = s.model->checkpoint_bytes();
  for (const auto& [format, path] : exports_) {
    OnnxExportOptions o = export_options(format, "round " + std::to_string(s.round) + "'s model");
    o.metadata = {{"fedtrack.job_id", start_.job_id},
                  {"fedtrack.round", std::to_string(s.round)},
                  {"fedtrack.tag", ModelRepository::tag_name(start_.job_id, s.round)},
                  {"fedtrack.dvc_md5", md5_hex(checkpoint)}};
    out.push_back({path, export_onnx(checkpoint, o).bytes});
  }
  return out;
}

// The MLflow Model directory (MLmodel, model.onnx, environment files) of a
// round's LoggedModel, beside its checkpoint; none, with a warning, when the
// checkpoint does not export.
std::vector<LoggedModelFile> JobRecorder::logged_model_files(const RoundSummary& s) const {
  const std::string& checkpoint = s.model->checkpoint_bytes();
  std::string why;
  const auto files = mlflow_model_directory(
      {checkpoint, "round " + std::to_string(s.round) + "'s model", tracking_->job_run_id(), "", "model",
       {{"fedtrack.job_id", start_.job_id}, {"fedtrack.round", std::to_string(s.round)},
        {"fedtrack.dvc_md5", md5_hex(checkpoint)}, {"fedtrack.checkpoint", model_options_.checkpoint_name}}},
      why);
  std::vector<LoggedModelFile> out;
  if (!files) {
    err_ << "warning: round " << s.round << "'s logged model has no MLflow model directory: " << why << std::endl;
    return out;
  }
  for (const auto& f : *files) out.push_back({f.name, f.text});
  return out;
}

void JobRecorder::on_job_end(const JobEnd& end) { tracking_->on_job_end(end); }

JobRecorder::Report JobRecorder::finish() {
  Report report;
  if (!tracking_) return report;  // the job never started: nothing recorded, nothing to say
  const TrackingReport r = tracking_->report();
  const std::string& path = journal_->path();
  if (!client_) {
    err_ << "tracking: journal only (no tracking URI); " << r.pending << " write(s) in " << path
         << "; send them with: fedtrack sync --journal " << path << " --tracking-uri URI" << std::endl;
  } else if (r.pending > 0) {
    err_ << "tracking: " << r.pending << " write(s) pending in " << path << " (MLflow at " << uri_
         << " did not take them); send them with: fedtrack sync --journal " << path << std::endl;
  } else {
    err_ << "tracking: MLflow run " << r.run_id << " (experiment " << r.experiment_id << ") at " << uri_ << std::endl;
  }
  auto id_or_null = [](const std::string& id) { return id.empty() ? nlohmann::json() : nlohmann::json(id); };
  nlohmann::json rounds = nlohmann::json::array();
  for (const auto& id : r.round_run_ids) rounds.push_back(id_or_null(id));
  std::int64_t requests = 0;
  double seconds = 0;
  nlohmann::json round_requests = nlohmann::json::array();  // per round's event, in order
  for (const auto& e : r.events) {
    requests += e.requests;
    seconds += e.seconds;
    if (e.round > 0) round_requests.push_back(e.requests);
  }
  report.tracking = {{"experiment_id", id_or_null(r.experiment_id)}, {"run_id", id_or_null(r.run_id)},
                     {"round_run_ids", rounds}, {"pending_writes", r.pending}, {"journal", path},
                     {"uri", id_or_null(uri_)}, {"requests", requests}, {"round_requests", round_requests},
                     {"seconds", seconds}};
  if (repository_) {
    nlohmann::json commits = nlohmann::json::array();
    for (const auto& c : commits_) {
      nlohmann::json entry = {{"round", c.round}, {"commit", c.commit}, {"tag", c.tag}, {"md5", c.md5}};
      for (const auto& o : c.outputs) entry["outputs"].push_back({{"path", o.path}, {"md5", o.md5}});
      commits.push_back(std::move(entry));
    }
    report.versioning = {{"repo", repository_->root()}, {"path", repository_->options().path}, {"rounds", commits}};
    if (!commits_.empty()) {
      err_ << "versioning: " << commits_.size() << " round(s) committed to " << repository_->root() << " (last "
           << commits_.back().tag << ", " << commits_.back().commit.substr(0, 12) << ")" << std::endl;
    }
  }
  return report;
}

}  // namespace fedtrack
