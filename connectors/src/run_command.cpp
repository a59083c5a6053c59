#include "fedtrack/connectors/run_command.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
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
#include "fedtrack/core/network.h"
#include "fedtrack/core/simulation.h"
#include "fedtrack/core/text.h"
#include "job_recorder.h"
#include "progress_printer.h"

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

nlohmann::json metrics_json(const Metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, handle_stop_signal);
  std::signal(SIGTERM, handle_stop_signal);
}

bool stop_requested() { return g_stop.load(); }

namespace {

using Runtime = std::function<JobResult(const JobSpec&, const JobRunOptions&)>;

// A test seam for crash recovery: with FEDTRACK_TEST_EXIT_AFTER_ROUND=N the
// process dies (exit 137, no cleanup, like SIGKILL) right after round N was
// recorded (MLflow run journalled, model committed and tagged) and before
// the resume point notes that it was: a resume must replay the round to
// tracking and versioning, which must keep what they have. N=0: right after
// the initial evaluation was recorded (before round 1 and any resume point).
class CrashAfterRound : public RoundListener {
 public:
  explicit CrashAfterRound(int round) : round_(round) {}
  void on_initial_evaluation(const Metrics&) override {
    if (round_ == 0) std::_Exit(137);
  }
  void on_round(const RoundSummary& summary) override {
    if (summary.round == round_) std::_Exit(137);
  }

 private:
  int round_;
};

// One job in either runtime, with tracking, versioning, the resume point and
// the report.
int run_job(const RunArgs& args, std::ostream& out, std::ostream& err, const Runtime& runtime) {
  const auto start = std::chrono::steady_clock::now();
  JobSpec job = load_job(args.job_path, args.overrides);
  if (args.require_tracking) job.tracking.required = true;
  if (job.privacy.enabled() && !dp_epsilon_bounds(job.strategy.name)) {
    err << "warning: privacy.dp: dp_epsilon assumes a strategy that averages the clipped updates; "
        << job.strategy.name << " does not, so the reported epsilon does not bound it" << std::endl;
  }
  JobRecorder recorder(job, args.job_path, err);
  ProgressPrinter progress(err);
  JobRunOptions options;
  options.job_id = make_job_id(job.name);
  // Tracking first: a round's progress line appears once its writes are journalled (and sent).
  options.listeners = {&recorder, &progress};
  std::unique_ptr<CrashAfterRound> crash;
  if (const char* at = std::getenv("FEDTRACK_TEST_EXIT_AFTER_ROUND")) {
    crash = std::make_unique<CrashAfterRound>(std::atoi(at));
    options.listeners.push_back(crash.get());
  }
  options.stop_requested = [] { return stop_requested(); };
  options.log = [&err](const std::string& line) { err << line << std::endl; };
  options.state_path = state_path_of(job);
  options.resume = args.resume;
  options.job_digest = job_digest(job);
  JobResult result;
  try {
    result = runtime(job, options);
  } catch (...) {
    recorder.finish();  // a started job's failure is journalled; say where it waits
    throw;
  }
  const JobRecorder::Report recorded = recorder.finish();
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
    if (result.resumed_after > 0) report["resumed_after"] = result.resumed_after;
    if (result.initial) report["initial"] = metrics_json(*result.initial);
    report["rounds"] = nlohmann::json::array();
    for (const auto& [round, metrics] : result.rounds) {
      report["rounds"].push_back({{"round", round}, {"metrics", metrics_json(metrics)}});
    }
    report["final"] = {{"eval_accuracy", metric("eval_accuracy")},
                       {"eval_loss", metric("eval_loss")},
                       {"model_sha256", model_sha256}};
    if (result.final_metrics.count("dp_epsilon")) report["final"]["dp_epsilon"] = metric("dp_epsilon");
    report["tracking"] = recorded.tracking;
    if (!recorded.versioning.is_null()) report["versioning"] = recorded.versioning;
    report["wall_seconds"] = wall;
    // "clients" (the first key in the sorted output) is written one entry at
    // a time: as json objects, 100,000 virtual clients' fingerprints held
    // ~25 MB at the end of the job.
    const auto text = [](const std::string& s) {
      return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    const std::string rest = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out << "{\"clients\":[";
    const char* comma = "";
    for (std::size_t c = 0; c < result.client_fingerprints.size(); ++c, comma = ",") {
      out << comma << "{\"data_fingerprint\":" << text(result.client_fingerprints[c]) << ",\"index\":" << c << "}";
    }
    for (const auto& [name, fingerprint] : result.site_fingerprints) {  // fedtrack server: sites by name
      out << comma << "{\"data_fingerprint\":" << text(fingerprint) << ",\"name\":" << text(name) << "}";
      comma = ",";
    }
    out << "]," << rest.substr(1) << std::endl;
  } else {
    std::ostringstream line;
    line << std::fixed << std::setprecision(4) << "test accuracy " << metric("eval_accuracy")
         << " (loss " << metric("eval_loss") << ") after " << result.rounds.size() << " rounds in "
         << std::setprecision(1) << wall << " s; model sha256 " << model_sha256.substr(0, 16);
    out << line.str() << std::endl;
  }
  recorder.check_nothing_pending(recorded);  // tracking.required: after the report, which says what waits
  return 0;
}

}  // namespace

int run_command(const RunArgs& args, std::ostream& out, std::ostream& err) {
  return run_job(args, out, err, run_simulation);
}

int server_command(const ServerArgs& args, std::ostream& out, std::ostream& err) {
  return run_job(args, out, err, [&args](const JobSpec& job, const JobRunOptions& sim) {
    NetworkServerOptions options;
    options.listen = args.listen;
    options.tokens_file = args.tokens;
    options.tls_cert = args.tls_cert;
    options.tls_key = args.tls_key;
    options.run = sim;
    return run_network_server(job, options);
  });
}

int client_command(const ClientArgs& args, std::ostream&, std::ostream& err) {
  NetworkClientOptions options;
  options.server = args.server;
  options.token = args.token;
  options.data = args.data;
  options.tls_ca = args.tls_ca;
  options.give_up_after = args.give_up_after;
  options.threads = args.threads;
  options.max_message_mb = args.max_message_mb;
  options.stop_requested = [] { return stop_requested(); };
  options.log = [&err](const std::string& line) { err << "fedtrack client: " << line << std::endl; };
  run_network_client(options);
  return 0;
}

int partition_command(const PartitionArgs& args, std::ostream& out, std::ostream& err) {
  const JobSpec job = load_job(args.job_path, args.overrides);
  const auto sizes = write_job_shards(job, args.out, [&out](const std::string& line) { out << line << std::endl; });
  err << sizes.size() << " shards of " << job.data.dataset << " (" << job.data.partition.kind << ") in " << args.out
      << std::endl;
  return 0;
}

}  // namespace fedtrack
