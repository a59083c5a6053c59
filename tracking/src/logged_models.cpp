#include "fedtrack/tracking/logged_models.h"

#include <cmath>
#include <cstdio>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/tracking_listener.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

// MLflow's limits on a tag / param value, in characters (never exceeded as bytes).
constexpr std::size_t kMaxTagValue = 8000;
constexpr std::size_t kMaxParamValue = 6000;
// What one CreateLoggedModel carries (the Python client's batch size too).
constexpr std::size_t kMaxCreateParams = 100;

KeyValue stored(const std::string& key, const std::string& value, std::size_t max_bytes) {
  return {sanitize_key(key), truncate_utf8(redact_secrets(value), max_bytes)};
}

// A LoggedModel name: MLflow refuses / : . % " ' in one.
std::string model_name(const std::string& job_name, int round) {
  std::string name = to_valid_utf8(job_name);
  for (char& c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == ':' || c == '.' || c == '%' || c == '"' || c == '\'' || u < 0x20 || u == 0x7f) c = '_';
  }
  name = truncate_utf8(name, 200);
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "round-%03d", round);
  return name.empty() ? suffix : name + "-" + suffix;
}

std::optional<double> score_of(const Metrics& metrics) {
  auto it = metrics.find(kBestModelMetric);
  if (it == metrics.end() || std::isnan(it->second)) return std::nullopt;
  return it->second;
}

// The timestamp a recorded round's metrics carry (its run's journalled
// batch), 0 when none is found.
std::int64_t recorded_metrics_ms(Journal& journal, const std::string& round_key) {
  for (const auto& op : journal.ops_for_run(round_key)) {
    if (op.op != "batch") continue;
    try {
      const auto batch = decode_write(op, journal.path()).batch;
      if (!batch.metrics.empty()) return batch.metrics.front().timestamp;
    } catch (const Error&) {
      // a write that does not decode says nothing here
    }
  }
  return 0;
}

}  // namespace

const std::vector<std::string>& log_models_choices() {
  static const std::vector<std::string> choices = {"none", "final", "best", "every"};
  return choices;
}

LogModels parse_log_models(const std::string& text) {
  if (text == "none") return LogModels::kNone;
  if (text == "final") return LogModels::kFinal;
  if (text == "best") return LogModels::kBest;
  if (text == "every") return LogModels::kEvery;
  throw Error::invalid_argument("tracking.log_models: '" + to_valid_utf8(text) +
                                "' is not one of none, final, best, every");
}

const char* log_models_name(LogModels policy) {
  switch (policy) {
    case LogModels::kNone: return "none";
    case LogModels::kFinal: return "final";
    case LogModels::kBest: return "best";
    case LogModels::kEvery: return "every";
  }
  return "none";
}

std::string LoggedModels::model_key(const std::string& job_id, int round) {
  return TrackingListener::round_key(job_id, round) + "/model";
}

LoggedModels::LoggedModels(Journal& journal, LoggedModelOptions options)
    : journal_(journal), options_(std::move(options)) {}

void LoggedModels::on_job_start(const JobStart& start) {
  job_id_ = start.job_id;
  job_name_ = start.name;
  start_params_.clear();
  for (const auto& [k, v] : start.params) start_params_.push_back({k, v});
  best_.reset();
  last_.reset();
  for (const auto& m : journal_.models(job_id_)) {  // a resumed job: what it logged before the stop
    if (m.score && (!best_ || *m.score > *best_)) best_ = m.score;
  }
}

void LoggedModels::journal_round(const RoundSummary& s, const std::vector<KeyValue>& lineage_tags,
                                 std::int64_t metrics_ms) {
  if (!s.model) return;  // nothing to log
  switch (options_.policy) {
    case LogModels::kNone:
      return;
    case LogModels::kEvery:
      journal_model(s, lineage_tags, metrics_ms, "every");
      return;
    case LogModels::kBest: {
      const auto score = score_of(s.metrics);
      if (!score || (best_ && !(*score > *best_))) return;
      best_ = score;
      journal_model(s, lineage_tags, metrics_ms, "best");
      return;
    }
    case LogModels::kFinal: {
      auto last = std::make_unique<Remembered>();
      last->summary = s;
      last->summary.clients.clear();  // not needed, and may be large
      last->lineage_tags = lineage_tags;
      last->metrics_ms = metrics_ms;
      last_ = std::move(last);
      return;
    }
  }
}

void LoggedModels::journal_job_end(const JobEnd& end) {
  if (options_.policy != LogModels::kFinal || end.status != JobStatus::kFinished || !last_) return;
  journal_model(last_->summary, last_->lineage_tags, last_->metrics_ms, "final");
  last_.reset();
}

void LoggedModels::journal_model(const RoundSummary& s, const std::vector<KeyValue>& lineage_tags,
                                 std::int64_t metrics_ms, const std::string& reason) {
  const std::string key = model_key(job_id_, s.round);
  if (journal_.model(key)) return;  // logged before (a re-run round, a second end): once per round
  const std::string& checkpoint = s.model->checkpoint_bytes();
  const std::int64_t ts = now_ms();
  // A re-run round (resumed after its records) passes 0: its points are in the journal.
  if (metrics_ms == 0) metrics_ms = recorded_metrics_ms(journal_, TrackingListener::round_key(job_id_, s.round));
  if (metrics_ms == 0) metrics_ms = ts;

  JournalModel m;
  m.model_key = key;
  m.job_id = job_id_;
  m.round = s.round;
  m.name = model_name(job_name_, s.round);
  m.reason = reason;
  m.score = score_of(s.metrics);
  m.created_ms = ts;
  journal_.add_model(m);

  Lineage lineage;
  lineage.job_id = job_id_;
  lineage.round = s.round;
  lineage.model_sha256 = sha256_hex(checkpoint);
  std::vector<KeyValue> tags;
  for (const auto& [k, v] : lineage.to_run_tags()) tags.push_back(stored(k, v, kMaxTagValue));
  for (const auto& t : lineage_tags) tags.push_back(stored(t.key, t.value, kMaxTagValue));
  tags.push_back({lineage_tag::kModelKey, json_text(key)});
  tags.push_back({kLogModelsTag, reason});
  for (const auto& t : options_.tags) tags.push_back(stored(t.key, t.value, kMaxTagValue));
  std::vector<KeyValue> params;
  for (const auto* list : {&options_.params, &start_params_}) {
    for (const auto& p : *list) {
      if (params.size() < kMaxCreateParams) params.push_back(stored(p.key, p.value, kMaxParamValue));
    }
  }
  const std::string& job_key = job_id_;  // the job's run: every write of the model is one of its ops
  journal_.add_op(job_key, "model_create",
                  dump_json({{"model", json_text(key)}, {"tags", tags_payload(tags)}, {"params", tags_payload(params)}}));

  std::vector<LoggedModelFile> files = {{options_.checkpoint_name, checkpoint}};
  if (options_.files) {
    for (auto& f : options_.files(s)) files.push_back(std::move(f));
  }
  for (const auto& f : files) {
    const std::string blob = key + "/" + f.path;
    journal_.put_blob(blob, f.bytes);
    journal_.add_op(job_key, "model_upload",
                    dump_json({{"model", json_text(key)}, {"path", json_text(f.path)}, {"blob", json_text(blob)}}));
  }
  journal_.add_op(job_key, "model_finalize", dump_json({{"model", json_text(key)}}));
  journal_.add_op(job_key, "model_link", dump_json({{"model", json_text(key)}, {"step", s.round}}));
  LogBatch metrics;
  // The timestamps the job's run has for these points: the run keeps one
  // point per (key, step, timestamp, value), the model gains its metrics.
  for (const auto& [k, v] : s.metrics) metrics.metrics.push_back({sanitize_key(k), v, metrics_ms, s.round});
  if (!metrics.metrics.empty()) {
    journal_.add_op(job_key, "model_metrics",
                    dump_json({{"model", json_text(key)}, {"metrics", batch_payload(metrics).at("metrics")}}));
  }
}

}  // namespace fedtrack
