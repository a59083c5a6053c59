// Per-round commit cost of the default job's shape (a 945,318-byte MLP
// checkpoint, its 13 round metrics, its 55 flattened params), so the
// DVCLive layout's extra files (dvclive/metrics.json, params.yaml, one .tsv
// per metric) can be weighed against the commit they ride on:
//
//   build/bench/bench_dvclive_commit [rounds] [repeats]
//
// Commits `rounds` rounds into a fresh repository, `repeats` times, and
// prints the median milliseconds per commit_round. Compare two builds (e.g.
// this branch and main) in the same session, alternating runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "fedtrack/versioning/model_repository.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::vector<std::string> metric_names = {
      "bytes_down", "bytes_up", "clients_failed", "clients_ok", "clients_sampled", "eval_accuracy", "eval_loss",
      "federated_eval_accuracy", "federated_eval_loss", "round_seconds", "slowest_train_seconds", "train_accuracy",
      "train_loss"};
  std::vector<std::pair<std::string, std::string>> params;
  for (int i = 0; i < 55; ++i) params.emplace_back("section" + std::to_string(i % 9) + ".key" + std::to_string(i), std::to_string(i * 0.37));
  std::mt19937_64 rng(7);
  std::vector<double> per_commit;
  for (int rep = 0; rep < repeats; ++rep) {
    const fs::path dir = fs::temp_directory_path() / ("fedtrack-bench-dvclive-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fedtrack::VersioningOptions options;
    options.repo = dir.string();
    options.params = params;
    fedtrack::ModelRepository repo(options);
    for (int r = 1; r <= rounds; ++r) {
      std::string checkpoint(945318, '\0');
      for (std::size_t i = 0; i + 8 <= checkpoint.size(); i += 8) {
        const auto v = rng();
        std::memcpy(&checkpoint[i], &v, 8);
      }
      fedtrack::Metrics metrics;
      for (const auto& m : metric_names) metrics[m] = std::uniform_real_distribution<double>(0, 1)(rng);
      const auto t = std::chrono::steady_clock::now();
      repo.commit_round("bench-job", "bench", r, rounds, checkpoint, metrics, {});
      per_commit.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    }
    for (auto& e : fs::recursive_directory_iterator(dir)) fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    fs::remove_all(dir);
  }
  std::sort(per_commit.begin(), per_commit.end());
  std::printf("commit_round, default job's shape: median %.2f ms, p90 %.2f ms over %zu commits (%d rounds x %d)\n",
              per_commit[per_commit.size() / 2], per_commit[per_commit.size() * 9 / 10], per_commit.size(), rounds,
              repeats);
  return 0;
}
