#include "progress_printer.h"

#include <cstdio>
#include <sstream>
#include <string>

namespace fedtrack {
namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string megabytes(double bytes) { return fixed(bytes / 1e6, 1) + " MB"; }

std::string metric(const Metrics& m, const std::string& key, const std::string& label) {
  auto it = m.find(key);
  return it == m.end() ? "" : "  " + label + "=" + fixed(it->second, 4);
}

}  // namespace

void ProgressPrinter::on_job_start(const JobStart& start) {
  total_rounds_ = start.total_rounds;
  out_ << "job " << start.job_id << ": " << start.total_rounds << " rounds" << std::endl;
}

void ProgressPrinter::on_initial_evaluation(const Metrics& m) {
  out_ << "round 0/" << total_rounds_ << metric(m, "eval_accuracy", "eval_accuracy")
       << metric(m, "eval_loss", "eval_loss") << "  (initial model)" << std::endl;
}

void ProgressPrinter::on_round(const RoundSummary& s) {
  // One write per line: this runs on the recording thread, beside the
  // round loop's own log lines.
  std::ostringstream line;
  const auto& m = s.metrics;
  line << "round " << s.round << "/" << s.total_rounds << metric(m, "eval_accuracy", "eval_accuracy")
       << metric(m, "eval_loss", "eval_loss") << metric(m, "train_loss", "train_loss")
       << metric(m, "federated_eval_accuracy", "fed_accuracy") << metric(m, "dp_epsilon", "epsilon")
       << "  clients "
       << static_cast<long>(m.at("clients_ok")) << "/" << static_cast<long>(m.at("clients_sampled"))
       << " ok  down " << megabytes(static_cast<double>(s.bytes_down)) << "  up "
       << megabytes(static_cast<double>(s.bytes_up)) << "  " << fixed(s.round_seconds, 1) << " s\n";
  for (const auto& c : s.clients) {
    if (!c.ok) line << "  client " << c.client_id << " failed: " << c.error << "\n";
  }
  out_ << line.str() << std::flush;
}

void ProgressPrinter::on_job_end(const JobEnd& end) {
  if (end.status != JobStatus::kFinished) {
    out_ << "job " << job_status_name(end.status) << " after " << end.rounds_completed
         << " rounds: " << end.error << std::endl;
  }
}

}  // namespace fedtrack
