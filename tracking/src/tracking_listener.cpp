#include "fedtrack/tracking/tracking_listener.h"

#include <chrono>
#include <cstdio>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/lineage.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/text.h"
#include "fedtrack/tracking/job_records.h"
#include "fedtrack/tracking/logged_models.h"
#include "process_owner.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

void add_metrics(LogBatch& batch, const Metrics& metrics, const std::string& prefix, std::int64_t ts,
                 std::int64_t step) {
  for (const auto& [key, value] : metrics) batch.metrics.push_back({sanitize_key(prefix + key), value, ts, step});
}

// MLflow's limits on a value, in characters; as bytes they are never exceeded.
constexpr std::size_t kMaxParamValue = 6000;
constexpr std::size_t kMaxTagValue = 8000;

// A param or tag value as it may be stored: no secrets (URLs lose their
// userinfo and credential query values), valid UTF-8, within MLflow's limit
// and never cut inside a character.
std::string stored_value(const std::string& value, std::size_t max_bytes) {
  return truncate_utf8(redact_secrets(value), max_bytes);
}

KeyValue param(const std::string& key, const std::string& value) {
  return {sanitize_key(key), stored_value(value, kMaxParamValue)};
}

KeyValue tag(const std::string& key, const std::string& value) {
  return {sanitize_key(key), stored_value(value, kMaxTagValue)};
}

// Centralized metrics (eval_*) are measured on the test set: say so, the
// way MLflow 3 takes it.
void name_test_set(LogBatch& batch, const DatasetInfo* test_set) {
  if (!test_set) return;
  for (auto& m : batch.metrics) {
    if (m.key.rfind("eval_", 0) != 0) continue;
    m.dataset_name = test_set->name;
    m.dataset_digest = dataset_digest(test_set->fingerprint);
  }
}

}  // namespace

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string TrackingListener::round_key(const std::string& job_id, int round) {
  char name[32];
  std::snprintf(name, sizeof name, "round-%03d", round);
  return job_id + "/" + name;
}

TrackingListener::TrackingListener(Journal& journal, MlflowClient* client, TrackingOptions options)
    : journal_(journal),
      client_(client),
      sync_(client ? std::make_unique<JournalSync>(journal, *client) : nullptr),
      options_(std::move(options)) {}

void TrackingListener::warn(const std::string& line) {
  if (line == last_warning_) return;  // say each problem once, not every round
  last_warning_ = line;
  if (options_.warn) options_.warn(line);
}

void TrackingListener::flush() {
  if (!client_) return;
  client_->set_deadline(MlflowClient::Clock::now() +
                        std::chrono::duration_cast<MlflowClient::Clock::duration>(
                            std::chrono::duration<double>(options_.timeout_seconds)));
  SyncResult result;
  try {
    result = sync_->run();
  } catch (const Error& e) {
    client_->set_deadline(std::nullopt);
    warn(std::string("tracking: ") + e.what());
    return;
  }
  client_->set_deadline(std::nullopt);
  for (const auto& note : result.notes) warn(note);
  for (const auto& line : result.corruption) warn("tracking: " + line + "; the write stays in the journal as failed");
  rejected_ += result.rejected + result.corrupt;
  if (result.rejected > 0) {
    warn("tracking: MLflow refused " + std::to_string(result.rejected) + " write(s); see `fedtrack runs --journal " +
         journal_.path() + "`");
  }
  if (result.stopped) {
    warn("tracking: " + result.stop_reason + "; writes wait in " + journal_.path() + " and will be retried");
  } else {
    last_warning_.clear();
  }
}

void TrackingListener::record(int round, const std::function<void()>& writes) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t before = client_ ? client_->requests_sent() : 0;
  journal_.transaction(writes);
  flush();
  events_.push_back({round, client_ ? client_->requests_sent() - before : 0,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});
}

std::string TrackingListener::create_payload(std::int64_t start_ms, const std::vector<KeyValue>& tags) const {
  nlohmann::json payload = {{"start_time", start_ms}, {"user", json_text(options_.user)}, {"tags", tags_payload(tags)}};
  if (!options_.experiment_id.empty()) payload["experiment_id"] = json_text(options_.experiment_id);
  return dump_json(payload);
}

void TrackingListener::on_job_start(const JobStart& start) {
  job_id_ = start.job_id;
  model_card_ = start.model_card;
  test_set_ = start.test_set;
  total_rounds_ = start.total_rounds;
  const int first = start.completed_rounds + 1;  // the round run made ahead
  const bool make_first = first <= start.total_rounds;
  const ProcessOwner me = this_process();
  if (start.resumed) {
    if (auto run = journal_.run(job_id_)) {
      // The same parent run goes on: running again, with a note of the resume.
      record(0, [&] {
        journal_.set_run_owner(job_id_, me.pid, me.host, me.start);
        if (run->status != "RUNNING") {
          journal_.add_op(job_id_, "end", dump_json({{"status", "RUNNING"}}));
          journal_.set_run_status(job_id_, "RUNNING", 0);
        }
        LogBatch note;
        note.tags.push_back({"fedtrack.resumed_after_round", std::to_string(start.completed_rounds)});
        journal_.add_op(job_id_, "batch", dump_json(batch_payload(note)));
        // The next round's run made before the stop is reused; if the stop
        // ended it (FAILED, or KILLED as an orphan) it runs again.
        if (!make_first) return;
        const std::string key = round_key(job_id_, first);
        if (auto next = journal_.run(key); next && next->status != "RUNNING" && next->status != "FINISHED") {
          journal_.add_op(key, "end", dump_json({{"status", "RUNNING"}}));
          journal_.set_run_status(key, "RUNNING", 0);
        }
        open_round_run(first, now_ms());
      });
      rounds_seen_ = std::max(rounds_seen_, start.completed_rounds);
      return;
    }
  }
  std::vector<std::string> orphaned;
  record(0, [&] {
    orphaned = end_orphans(start);
    JournalRun run;
    run.run_key = job_id_;
    run.job_id = job_id_;
    run.kind = "job";
    run.run_name = parent_run_name(start.name, job_id_);
    run.experiment = options_.experiment;
    run.created_ms = now_ms();
    run.owner_pid = me.pid;
    run.owner_host = me.host;
    run.owner_start = me.start;
    journal_.add_run(run);
    std::vector<KeyValue> tags;
    for (const auto& t : options_.job_tags) tags.push_back(tag(t.key, t.value));
    tags.push_back(tag(lineage_tag::kJobId, job_id_));
    tags.push_back({"fedtrack.rounds", std::to_string(start.total_rounds)});
    if (!options_.user.empty()) tags.push_back(tag("mlflow.user", options_.user));
    journal_.add_op(job_id_, "create", create_payload(run.created_ms, tags));
    LogBatch params;
    for (const auto& p : options_.job_params) params.params.push_back(param(p.key, p.value));
    for (const auto& [k, v] : start.params) params.params.push_back(param(k, v));
    if (!params.params.empty()) journal_.add_op(job_id_, "batch", dump_json(batch_payload(params)));
    if (test_set_) {
      journal_.add_op(job_id_, "inputs", dump_json(inputs_payload({evaluation_input(*test_set_, model_card_.get())})));
    }
    if (!options_.job_file.empty()) {
      journal_.add_op(job_id_, "artifact", dump_json(artifact_payload(kJobFileArtifact, options_.job_file)));
    }
    if (make_first) open_round_run(first, run.created_ms);
  });
  for (const auto& key : orphaned) {
    warn("tracking: job " + json_text(key) + " (" + json_text(start.name) +
         ") was left RUNNING by a process that is gone; marked KILLED");
  }
}

std::vector<std::string> TrackingListener::end_orphans(const JobStart& start) {
  std::vector<std::string> ended;
  const auto runs = journal_.runs();
  for (const auto& job : runs) {
    if (job.kind != "job" || job.run_key == job_id_ || job.status != "RUNNING") continue;
    // The same job name: a parent run is named after its job's name and id
    // (in journals of older fedtrack versions: the job name itself).
    if (job.run_name != parent_run_name(start.name, job.job_id) && job.run_name != start.name) continue;
    if (!owner_gone({job.owner_pid, job.owner_host, job.owner_start})) continue;  // its process still runs it
    const std::int64_t ts = now_ms();
    for (const auto& round : runs) {
      if (round.kind != "round" || round.parent_key != job.run_key || round.status != "RUNNING") continue;
      journal_.add_op(round.run_key, "end", dump_json({{"status", "KILLED"}, {"end_time", ts}}));
      journal_.set_run_status(round.run_key, "KILLED", ts);
    }
    const std::string owner = job.owner_pid > 0 ? "pid " + std::to_string(job.owner_pid) + " on " + job.owner_host
                                                : "an unrecorded process";
    LogBatch note;
    note.tags.push_back(tag("mlflow.note.content",
                            "Orphaned: the process that ran this job (" + owner +
                                ") is gone and the job never ended (killed before it could resume). Marked KILLED "
                                "when job " + job_id_ + " of the same name started."));
    journal_.add_op(job.run_key, "batch", dump_json(batch_payload(note)));
    journal_.add_op(job.run_key, "end", dump_json({{"status", "KILLED"}, {"end_time", ts}}));
    journal_.set_run_status(job.run_key, "KILLED", ts);
    ended.push_back(job.run_key);
  }
  return ended;
}

void TrackingListener::on_initial_evaluation(const Metrics& metrics) {
  record(0, [&] {
    LogBatch batch;
    add_metrics(batch, metrics, "", now_ms(), 0);
    name_test_set(batch, test_set_.get());
    journal_.add_op(job_id_, "batch", dump_json(batch_payload(batch)));
  });
}

void TrackingListener::on_round(const RoundSummary& s) { record_round(s, {}); }

std::string TrackingListener::round_run_id(int round) {
  auto run = journal_.run(round_key(job_id_, round));
  return run ? run->run_id : "";
}

std::string TrackingListener::job_run_id() {
  auto run = journal_.run(job_id_);
  return run ? run->run_id : "";
}

void TrackingListener::open_round_run(int round, std::int64_t start_ms) {
  const std::string key = round_key(job_id_, round);
  if (journal_.run(key)) return;  // made ahead already (or before a stop): one run per round
  JournalRun run;
  run.run_key = key;
  run.job_id = job_id_;
  run.kind = "round";
  run.round = round;
  run.run_name = key.substr(key.rfind('/') + 1);
  run.experiment = options_.experiment;
  run.parent_key = job_id_;
  run.created_ms = start_ms;
  journal_.add_run(run);
  std::vector<KeyValue> tags = {tag(lineage_tag::kJobId, job_id_), {lineage_tag::kRound, std::to_string(round)}};
  if (!options_.user.empty()) tags.push_back(tag("mlflow.user", options_.user));
  journal_.add_op(key, "create", create_payload(start_ms, tags));
}

std::string TrackingListener::recorded_model_sha(const std::string& key) {
  for (const auto& op : journal_.ops_for_run(key)) {
    if (op.op != "batch") continue;
    try {
      for (const auto& t : decode_write(op, journal_.path()).batch.tags) {
        if (t.key == lineage_tag::kModelSha256) return t.value;
      }
    } catch (const Error& e) {
      warn(std::string("tracking: ") + e.what());  // that write says nothing we can check
    }
  }
  return "";
}

void TrackingListener::record_round(const RoundSummary& s, const std::vector<KeyValue>& extra_tags) {
  rounds_seen_ = std::max(rounds_seen_, s.round);
  total_rounds_ = std::max(total_rounds_, s.total_rounds);
  const int next = s.round + 1;  // made ahead, in this round's transaction
  const bool make_next = next <= total_rounds_;
  const std::string model_sha = s.model ? sha256_hex(s.model->checkpoint_bytes()) : "";
  if (auto run = journal_.run(round_key(job_id_, s.round)); run && run->status == "FINISHED") {
    // A re-run round (resumed after a stop between its records and its
    // resume point): recorded already, and must be the same model.
    const std::string recorded = recorded_model_sha(run->run_key);
    if (recorded != model_sha) {
      throw Error(ErrorCode::kAlreadyExists, "tracking: round " + std::to_string(s.round) + " of job " + job_id_ +
                                                 " was recorded with model sha256 " + recorded +
                                                 ", the re-run produced " + model_sha);
    }
    // Its transaction made the next round's run too (unless an older
    // fedtrack wrote it).
    if (make_next && !journal_.run(round_key(job_id_, next))) record(s.round, [&] { open_round_run(next, now_ms()); });
    // Its model too, when logged (once per round); `final` remembers it.
    if (models_) journal_.transaction([&] { models_->journal_round(s, extra_tags, 0); });
    return;
  }
  record(s.round, [&] {
    const std::int64_t ts = now_ms();
    const std::string key = round_key(job_id_, s.round);
    // Made ahead unless the job started under an older fedtrack or the
    // journal lost it: then it starts when the round did.
    open_round_run(s.round, ts - static_cast<std::int64_t>(s.round_seconds * 1000));
    LogBatch child;
    add_metrics(child, s.metrics, "", ts, s.round);
    name_test_set(child, test_set_.get());
    for (const auto& [k, v] : s.fit_config) child.params.push_back(param(k, scalar_to_string(v)));
    if (!model_sha.empty()) child.tags.push_back({lineage_tag::kModelSha256, model_sha});
    for (const auto& t : extra_tags) child.tags.push_back(tag(t.key, t.value));
    for (const auto& c : s.clients) {
      const std::string prefix = "client/" + c.client_id + "/";
      add_metrics(child, c.fit_metrics, prefix, ts, s.round);
      for (const auto& [k, v] : c.evaluate_metrics) {
        child.metrics.push_back({sanitize_key(prefix + "eval_" + k), v, ts, s.round});
      }
      add_metrics(child,
                  {{"ok", c.ok ? 1.0 : 0.0},
                   {"num_examples", static_cast<double>(c.num_examples)},
                   {"bytes_down", static_cast<double>(c.bytes_down)},
                   {"bytes_up", static_cast<double>(c.bytes_up)},
                   {"fit_seconds", c.fit_seconds}},
                  prefix, ts, s.round);
      if (!c.data_fingerprint.empty()) child.tags.push_back(tag(prefix + "data_fingerprint", c.data_fingerprint));
      if (!c.ok) child.tags.push_back(tag(prefix + "error", c.error));
    }
    journal_.add_op(key, "batch", dump_json(batch_payload(child)));
    journal_.add_op(key, "end", dump_json({{"status", "FINISHED"}, {"end_time", ts}}));
    journal_.set_run_status(key, "FINISHED", ts);

    LogBatch parent;
    add_metrics(parent, s.metrics, "", ts, s.round);
    name_test_set(parent, test_set_.get());
    // Each site's curve across rounds: its fit and evaluate metrics at step
    // = round, after the global ones (client/ sorts after them).
    for (const auto& c : s.clients) {
      const std::string prefix = std::string(kClientMetricPrefix) + c.client_id + "/";
      const std::size_t first = parent.metrics.size();
      add_metrics(parent, c.fit_metrics, prefix, ts, s.round);
      if (!c.data_fingerprint.empty()) {  // trained on the site's training data
        for (std::size_t i = first; i < parent.metrics.size(); ++i) {
          parent.metrics[i].dataset_name = training_dataset_name(c.client_id);
          parent.metrics[i].dataset_digest = dataset_digest(c.data_fingerprint);
        }
      }
      for (const auto& [k, v] : c.evaluate_metrics) {
        parent.metrics.push_back({sanitize_key(prefix + "eval_" + k), v, ts, s.round});
      }
    }
    journal_.add_op(job_id_, "batch", dump_json(batch_payload(parent)));
    log_new_training_inputs(s);
    if (models_) models_->journal_round(s, extra_tags, ts);
    if (make_next) open_round_run(next, ts);
  });
}

void TrackingListener::log_new_training_inputs(const RoundSummary& s) {
  if (!inputs_loaded_) {  // a resumed job: what its first part logged
    inputs_loaded_ = true;
    for (const auto& op : journal_.ops_for_run(job_id_)) {
      if (op.op != "inputs") continue;
      try {
        for (const auto& d : decode_write(op, journal_.path()).datasets) logged_inputs_.insert({d.name, d.digest});
      } catch (const Error& e) {
        warn(std::string("tracking: ") + e.what());  // logged again below: the server keeps it once
      }
    }
  }
  std::vector<DatasetInput> fresh;
  for (const auto& c : s.clients) {
    if (c.data_fingerprint.empty()) continue;
    DatasetInput in = training_input(c.client_id, c.data_fingerprint, c.num_examples, model_card_.get());
    if (logged_inputs_.insert({in.name, in.digest}).second) fresh.push_back(std::move(in));
  }
  if (!fresh.empty()) journal_.add_op(job_id_, "inputs", dump_json(inputs_payload(fresh)));
}

void TrackingListener::on_job_end(const JobEnd& end) {
  record(-1, [&] {
    const std::int64_t ts = now_ms();
    const std::string status = job_status_name(end.status);
    if (!end.error.empty()) {
      LogBatch note;
      note.tags.push_back(tag("mlflow.note.content", end.error));
      journal_.add_op(job_id_, "batch", dump_json(batch_payload(note)));
    }
    // A round run made ahead that never ran ends with the job: it did not
    // finish, so a finished job (stopped early) ends it KILLED.
    const std::string round_status = end.status == JobStatus::kFinished ? "KILLED" : status;
    for (const auto& run : journal_.runs()) {
      if (run.kind != "round" || run.parent_key != job_id_ || run.status != "RUNNING") continue;
      journal_.add_op(run.run_key, "end", dump_json({{"status", round_status}, {"end_time", ts}}));
      journal_.set_run_status(run.run_key, round_status, ts);
    }
    if (models_) models_->journal_job_end(end);  // the final model, before the run ends
    journal_.add_op(job_id_, "end", dump_json({{"status", status}, {"end_time", ts}}));
    journal_.set_run_status(job_id_, status, ts);
  });
}

TrackingReport TrackingListener::report() {
  TrackingReport r;
  if (auto job = journal_.run(job_id_)) {
    r.experiment_id = job->experiment_id;
    r.run_id = job->run_id;
  }
  for (int round = 1; round <= rounds_seen_; ++round) {
    auto run = journal_.run(round_key(job_id_, round));
    r.round_run_ids.push_back(run ? run->run_id : "");
  }
  r.pending = journal_.pending_count();
  r.rejected = rejected_;
  r.events = events_;
  return r;
}

}  // namespace fedtrack
