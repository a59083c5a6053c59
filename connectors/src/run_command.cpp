#include "fedtrack/connectors/run_command.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <random>
#include <sstream>

#include "fedtrack/connectors/job_config.h"
#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/simulation.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "progress_printer.h"
#include "source_info.h"

namespace fedtrack {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void handle_stop_signal(int signal) {
  g_stop.store(true);
  std::signal(signal, SIG_DFL);  // a second signal ends the process at once
}

std::string make_job_id(const std::string& name) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::random_device entropy;
  std::ostringstream id;
  id << name << "-" << std::put_time(&utc, "%Y%m%dT%H%M%SZ") << "-" << std::hex << std::setw(6)
     << std::setfill('0') << (entropy() & 0xffffff);
  return id.str();
}

// The job's tracking: the journal always, an MLflow client when a tracking
// URI is set (job file, else MLFLOW_TRACKING_URI).
class JobTracking {
 public:
  JobTracking(JobSpec& job, const RunArgs& args, std::ostream& err) : err_(err) {
    if (job.tracking.uri.empty()) {
      if (const char* uri = std::getenv("MLFLOW_TRACKING_URI")) job.tracking.uri = uri;
    }
    if (job.tracking.experiment.empty()) {
      const char* name = std::getenv("MLFLOW_EXPERIMENT_NAME");
      job.tracking.experiment = name && *name ? name : "Default";
    }
    journal_ = std::make_unique<Journal>(job.tracking.journal);
    if (!job.tracking.uri.empty()) {
      client_ = std::make_unique<MlflowClient>(MlflowConfig::from_environment(job.tracking.uri));
    }
    TrackingOptions options;
    options.experiment = job.tracking.experiment;
    options.timeout_seconds = job.tracking.timeout;
    for (const auto& [k, v] : flatten_job(job)) options.job_params.push_back({k, v});
    options.user = current_user();
    options.job_tags.push_back({"mlflow.source.type", "LOCAL"});
    options.job_tags.push_back(
        {"mlflow.source.name", "fedtrack run" + (args.job_path.empty() ? std::string() : " " + args.job_path)});
    const std::string commit = git_commit_of(args.job_path.empty() ? "." : args.job_path);
    if (!commit.empty()) options.job_tags.push_back({"mlflow.source.git.commit", commit});
    options.warn = [this](const std::string& line) { err_ << line << std::endl; };
    listener_ = std::make_unique<TrackingListener>(*journal_, client_.get(), std::move(options));
    uri_ = job.tracking.uri;
  }

  RoundListener* listener() { return listener_.get(); }

  // One closing line on stderr: where the run is, or what still waits.
  nlohmann::json finish() {
    const TrackingReport r = listener_->report();
    const std::string& path = journal_->path();
    if (!client_) {
      err_ << "tracking: journal only (no tracking URI); " << r.pending << " write(s) in " << path
           << "; send them with: fedtrack sync --journal " << path << " --tracking-uri URI" << std::endl;
    } else if (r.pending > 0) {
      err_ << "tracking: " << r.pending << " write(s) pending in " << path << " (MLflow at " << uri_
           << " did not take them); send them with: fedtrack sync --journal " << path << std::endl;
    } else {
      err_ << "tracking: MLflow run " << r.run_id << " (experiment " << r.experiment_id << ") at " << uri_
           << std::endl;
    }
    auto id_or_null = [](const std::string& id) { return id.empty() ? nlohmann::json() : nlohmann::json(id); };
    nlohmann::json rounds = nlohmann::json::array();
    for (const auto& id : r.round_run_ids) rounds.push_back(id_or_null(id));
    std::int64_t requests = 0;
    double seconds = 0;
    for (const auto& e : r.events) {
      requests += e.requests;
      seconds += e.seconds;
    }
    return {{"experiment_id", id_or_null(r.experiment_id)}, {"run_id", id_or_null(r.run_id)},
            {"round_run_ids", rounds}, {"pending_writes", r.pending}, {"journal", path},
            {"uri", id_or_null(uri_)}, {"requests", requests}, {"seconds", seconds}};
  }

 private:
  std::ostream& err_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<MlflowClient> client_;
  std::unique_ptr<TrackingListener> listener_;
  std::string uri_;
};

nlohmann::json metrics_json(const Metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

}  // namespace

int exit_status_for(int error_code) {
  switch (static_cast<ErrorCode>(error_code)) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kNotFound: return 3;
    case ErrorCode::kUnavailable: return 4;
    case ErrorCode::kCorruption: return 5;
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kUnauthenticated: return 6;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAlreadyExists: return 7;
    case ErrorCode::kCancelled: return 130;
    case ErrorCode::kInternal: return 1;
  }
  return 1;
}

void install_stop_handlers() {
  std::signal(SIGINT, handle_stop_signal);
  std::signal(SIGTERM, handle_stop_signal);
}

bool stop_requested() { return g_stop.load(); }

int run_command(const RunArgs& args, std::ostream& out, std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  try {
    JobSpec job = load_job(args.job_path, args.overrides);
    JobTracking tracking(job, args, err);
    ProgressPrinter progress(err);
    SimulationOptions options;
    options.job_id = make_job_id(job.name);
    // Tracking first: a round's progress line appears once its writes are journalled (and sent).
    options.listeners = {tracking.listener(), &progress};
    options.stop_requested = [] { return stop_requested(); };
    options.log = [&err](const std::string& line) { err << line << std::endl; };
    SimulationResult result;
    try {
      result = run_simulation(job, options);
    } catch (const Error&) {
      tracking.finish();  // the failure is journalled; say where it waits
      throw;
    }
    const nlohmann::json tracking_report = tracking.finish();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const std::string& checkpoint = result.final_model->checkpoint_bytes();
    const std::string model_sha256 = sha256_hex(checkpoint);
    if (!args.model_out.empty()) {
      write_file_atomically(args.model_out, checkpoint);
      err << "final model written to " << args.model_out << std::endl;
    }
    const auto metric = [&](const char* key) {
      auto it = result.final_metrics.find(key);
      return it == result.final_metrics.end() ? 0.0 : it->second;
    };
    if (args.json) {
      nlohmann::json report;
      report["job_id"] = result.job_id;
      report["name"] = job.name;
      if (result.initial) report["initial"] = metrics_json(*result.initial);
      report["rounds"] = nlohmann::json::array();
      for (const auto& [round, metrics] : result.rounds) {
        report["rounds"].push_back({{"round", round}, {"metrics", metrics_json(metrics)}});
      }
      report["final"] = {{"eval_accuracy", metric("eval_accuracy")},
                         {"eval_loss", metric("eval_loss")},
                         {"model_sha256", model_sha256}};
      report["clients"] = nlohmann::json::array();
      for (std::size_t c = 0; c < result.client_fingerprints.size(); ++c) {
        report["clients"].push_back({{"index", c}, {"data_fingerprint", result.client_fingerprints[c]}});
      }
      report["tracking"] = tracking_report;
      report["wall_seconds"] = wall;
      out << report.dump() << std::endl;
    } else {
      std::ostringstream line;
      line << std::fixed << std::setprecision(4) << "test accuracy " << metric("eval_accuracy")
           << " (loss " << metric("eval_loss") << ") after " << result.rounds.size() << " rounds in "
           << std::setprecision(1) << wall << " s; model sha256 " << model_sha256.substr(0, 16);
      out << line.str() << std::endl;
    }
    return 0;
  } catch (const Error& e) {
    err << "fedtrack: " << e.what() << std::endl;
    return exit_status_for(static_cast<int>(e.code()));
  } catch (const std::exception& e) {
    err << "fedtrack: internal error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace fedtrack
