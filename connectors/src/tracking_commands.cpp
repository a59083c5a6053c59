#include "fedtrack/connectors/tracking_commands.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ostream>

#include "fedtrack/connectors/exit_status.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/journal_sync.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

void require_journal(const std::string& path) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) throw Error::invalid_argument("--journal " + path + ": " + ec.message());
  if (!exists) throw Error::not_found("no tracking journal at " + path + " (pass --journal PATH)");
}

// JSON for a terminal or a pipe: text that is not UTF-8 becomes U+FFFD.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::string sync_state(Journal& journal, const JournalRun& run) {
  const std::size_t pending = journal.pending_count(run.run_key);
  std::string s = run.run_id.empty() ? "not on a server" : "mlflow run " + run.run_id;
  if (pending > 0) s += ", " + std::to_string(pending) + " write(s) pending";
  return s;
}

}  // namespace

int runs_command(const RunsArgs& args, std::ostream& out, std::ostream& err) {
  require_journal(args.journal);
  Journal journal(args.journal);
  const auto runs = journal.runs();
  std::vector<std::string> corrupt;
  json report = json::array();
  for (const auto& job : runs) {
    if (job.kind != "job") continue;
    json j = {{"job_id", to_valid_utf8(job.job_id)}, {"name", to_valid_utf8(job.run_name)},
              {"status", job.status}, {"experiment", to_valid_utf8(job.experiment)},
              {"tracking_uri", redact_uri(job.tracking_uri)}, {"run_id", job.run_id},
              {"pending_writes", journal.pending_count(job.run_key)},
              {"metrics", journal.run_metrics(job.run_key, &corrupt)}, {"rounds", json::array()}};
    if (!args.json) {
      out << to_valid_utf8(job.job_id) << "  " << job.status << "  experiment " << to_valid_utf8(job.experiment)
          << "  " << sync_state(journal, job) << "\n";
    }
    for (const auto& round : runs) {
      if (round.kind != "round" || round.parent_key != job.run_key) continue;
      const auto metrics = journal.run_metrics(round.run_key, &corrupt);
      j["rounds"].push_back({{"round", round.round}, {"status", round.status}, {"run_id", round.run_id},
                             {"pending_writes", journal.pending_count(round.run_key)}, {"metrics", metrics}});
      if (!args.json) {
        out << "  " << round.run_name << "  " << round.status;
        for (const char* key : {"eval_accuracy", "eval_loss", "train_loss"}) {
          auto it = metrics.find(key);
          if (it != metrics.end()) out << "  " << key << "=" << fixed(it->second);
        }
        out << "  " << sync_state(journal, round) << "\n";
      }
    }
    report.push_back(j);
  }
  if (args.json) {
    out << dump(report) << "\n";
  } else if (report.empty()) {
    out << "no jobs in " << args.journal << "\n";
  }
  if (const std::size_t failed = journal.failed_count()) {
    err << failed << " write(s) were refused by MLflow; they stay in the journal as failed\n";
  }
  if (!corrupt.empty()) {
    for (const auto& line : corrupt) err << "fedtrack: " << to_valid_utf8(redact_secrets(line)) << "\n";
    err << "fedtrack: " << corrupt.size() << " corrupt write(s) left out of the listing above" << std::endl;
    return exit_status_for(ErrorCode::kCorruption);
  }
  return 0;
}

int sync_command(const SyncArgs& args, std::ostream& out, std::ostream& err) {
  require_journal(args.journal);
  MlflowConfig config = MlflowConfig::from_environment(args.tracking_uri);
  if (config.tracking_uri.empty()) {
    throw Error::invalid_argument("no tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI");
  }
  Journal journal(args.journal);
  const std::size_t before = journal.pending_count();
  if (before == 0) {
    if (!journal.pending_ops().empty()) {  // only checks for late duplicate runs: best effort
      MlflowClient client(config);
      client.set_deadline(MlflowClient::Clock::now() + std::chrono::seconds(10));
      for (const auto& note : JournalSync(journal, client).run().notes) err << note << std::endl;
    }
    out << "sync: nothing to send (" << args.journal << ")" << std::endl;
    return 0;
  }
  MlflowClient client(config);
  const SyncResult r = JournalSync(journal, client).run();
  for (const auto& note : r.notes) err << note << std::endl;
  out << "sync: sent " << r.sent << " write(s) to " << client.config().tracking_uri << " in "
      << client.requests_sent() << " request(s); " << journal.pending_count() << " pending" << std::endl;
  if (r.stopped) throw Error(r.stop_code, r.stop_reason);
  if (r.rejected > 0) {
    err << "fedtrack: MLflow refused " << r.rejected
        << " write(s); they stay in the journal as failed (fedtrack runs --journal " << args.journal << ")"
        << std::endl;
  }
  if (r.corrupt > 0) {
    for (const auto& line : r.corruption) err << "fedtrack: " << to_valid_utf8(redact_secrets(line)) << std::endl;
    err << "fedtrack: " << r.corrupt << " corrupt write(s) could not be sent; they stay in the journal as failed "
        << "and every other write was sent" << std::endl;
    return exit_status_for(ErrorCode::kCorruption);
  }
  return r.rejected > 0 ? 2 : 0;
}

}  // namespace fedtrack
