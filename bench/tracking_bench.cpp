// What tracking costs a round, against a real MLflow server:
//
//   .venv/bin/python tests/integration/mlflow_server.py -- build/bench/bench_tracking [rounds]
//
// (the wrapper starts a server and passes FEDTRACK_TEST_MLFLOW_URI; or set it
// yourself). Each round carries what the default job's rounds carry: 10
// clients' metrics, the global metrics, the fit config and fingerprints.
//
// fedtrack: TrackingListener (journal + one log-batch per run touched).
// baseline: the same entities, one REST request per metric / param / tag
//           (runs/log-metric, runs/log-parameter, runs/set-tag), measured in the
//           same run against the same server.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"
#include "fedtrack/tracking/tracking_listener.h"

namespace {

using fedtrack::KeyValue;
using fedtrack::LogBatch;
using fedtrack::Metric;

fedtrack::RoundSummary make_round(int round) {
  fedtrack::RoundSummary s;
  s.round = round;
  s.total_rounds = 1000;
  s.metrics = {{"eval_accuracy", 0.8}, {"eval_loss", 0.5}, {"train_loss", 0.4}, {"train_accuracy", 0.85},
               {"federated_eval_accuracy", 0.8}, {"federated_eval_loss", 0.5}, {"clients_sampled", 10},
               {"clients_ok", 10}, {"clients_failed", 0}, {"bytes_down", 1.88e7}, {"bytes_up", 9.4e6},
               {"round_seconds", 1.0}};
  s.fit_config = {{"round", std::int64_t{round}}, {"epochs", std::int64_t{1}}, {"batch_size", std::int64_t{32}},
                  {"lr", 0.05}, {"optimizer", std::string("sgd")}, {"momentum", 0.0}, {"weight_decay", 0.0}};
  for (int c = 0; c < 10; ++c) {
    fedtrack::ClientRoundStat stat;
    stat.client_id = "client-00" + std::to_string(c);
    stat.num_examples = 5400;
    stat.fit_metrics = {{"train_loss", 0.4}, {"train_accuracy", 0.85}};
    stat.evaluate_metrics = {{"accuracy", 0.8}, {"loss", 0.5}};
    stat.data_fingerprint = std::string(64, 'f');
    s.clients.push_back(stat);
  }
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  const char* uri = std::getenv("FEDTRACK_TEST_MLFLOW_URI");
  if (!uri) uri = std::getenv("MLFLOW_TRACKING_URI");
  if (!uri) {
    std::fprintf(stderr, "set FEDTRACK_TEST_MLFLOW_URI or MLFLOW_TRACKING_URI (see the header comment)\n");
    return 2;
  }
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string journal_path =
      (std::filesystem::temp_directory_path() / ("fedtrack-bench-" + std::to_string(::getpid()) + ".sqlite")).string();

  // --- fedtrack: the listener, journal included ---
  fedtrack::MlflowClient client(fedtrack::MlflowConfig::from_environment(uri));
  double listener_seconds = 0;
  std::int64_t listener_requests = 0;
  {
    fedtrack::Journal journal(journal_path);
    fedtrack::TrackingOptions options;
    options.experiment = "bench-tracking";
    fedtrack::TrackingListener listener(journal, &client, options);
    listener.on_job_start({"bench-" + std::to_string(::getpid()), "bench", rounds});
    for (int r = 1; r <= rounds; ++r) listener.on_round(make_round(r));
    listener.on_job_end({});
    for (const auto& e : listener.report().events) {
      if (e.round > 0) {
        listener_seconds += e.seconds;
        listener_requests += e.requests;
      }
    }
  }
  std::filesystem::remove(journal_path);
  std::filesystem::remove(journal_path + "-wal");
  std::filesystem::remove(journal_path + "-shm");

  // --- baseline: one request per entity ---
  const std::string exp = client.get_or_create_experiment("bench-tracking-baseline");
  const auto parent = client.create_run(exp, "baseline", fedtrack::now_ms(), {});
  double baseline_seconds = 0;
  std::int64_t baseline_requests = 0;
  for (int r = 1; r <= rounds; ++r) {
    const auto s = make_round(r);
    const auto start = std::chrono::steady_clock::now();
    const auto before = client.requests_sent();
    const auto child = client.create_run(exp, "round", fedtrack::now_ms(), {{"mlflow.parentRunId", parent.run_id}});
    const std::int64_t ts = fedtrack::now_ms();
    auto log_metric = [&](const std::string& run, const std::string& key, double v) {
      client.call("POST", "mlflow/runs/log-metric",
                  nlohmann::json{{"run_id", run}, {"key", key}, {"value", v}, {"timestamp", ts}, {"step", r}}.dump());
    };
    for (const auto& [k, v] : s.metrics) log_metric(child.run_id, k, v);
    for (const auto& [k, v] : s.fit_config) {
      client.call("POST", "mlflow/runs/log-parameter",
                  nlohmann::json{{"run_id", child.run_id}, {"key", k}, {"value", fedtrack::scalar_to_string(v)}}.dump());
    }
    for (const auto& c : s.clients) {
      const std::string p = "client/" + c.client_id + "/";
      for (const auto& [k, v] : c.fit_metrics) log_metric(child.run_id, p + k, v);
      for (const auto& [k, v] : c.evaluate_metrics) log_metric(child.run_id, p + "eval_" + k, v);
      for (const char* k : {"ok", "num_examples", "bytes_down", "bytes_up", "fit_seconds"}) log_metric(child.run_id, p + k, 1);
      client.set_tag(child.run_id, p + "data_fingerprint", c.data_fingerprint);
    }
    client.update_run(child.run_id, "FINISHED", fedtrack::now_ms());
    for (const auto& [k, v] : s.metrics) log_metric(parent.run_id, k, v);
    baseline_seconds += seconds_since(start);
    baseline_requests += client.requests_sent() - before;
  }
  client.update_run(parent.run_id, "FINISHED", fedtrack::now_ms());

  std::printf("tracking cost per round (%d rounds, 10 clients, %s)\n", rounds, uri);
  std::printf("%-34s %14s %16s\n", "", "requests/round", "ms/round");
  std::printf("%-34s %14.1f %16.2f\n", "fedtrack (journal + log-batch)", double(listener_requests) / rounds,
              1000 * listener_seconds / rounds);
  std::printf("%-34s %14.1f %16.2f\n", "baseline (one request per entity)", double(baseline_requests) / rounds,
              1000 * baseline_seconds / rounds);
  std::printf("ratio fedtrack / baseline: requests %.3f, time %.3f\n",
              double(listener_requests) / double(baseline_requests), listener_seconds / baseline_seconds);
  return 0;
}
