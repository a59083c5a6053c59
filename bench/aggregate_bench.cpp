// Aggregation throughput for K clients x P parameters, beside memcpy
// bandwidth measured in the same run on the same bytes.
//
//   build/bench/bench_aggregate            (all sizes)
//   build/bench/bench_aggregate --benchmark_filter=/10/
//
// Both rates count the client bytes consumed per second (K * P * 4 bytes per
// iteration): memcpy copies each client's buffer once; FedAvg folds each
// client's model into one accumulator (WeightedAverage). The closing table
// prints aggregate / memcpy for each shape.
#include <benchmark/benchmark.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "fedtrack/core/aggregate.h"
#include "fedtrack/core/parameters.h"

namespace {

// A model of P float parameters in a few tensors, like a small MLP.
fedtrack::Parameters model(std::int64_t p, int seed) {
  torch::manual_seed(seed);
  fedtrack::Parameters out;
  const std::int64_t parts[] = {p * 3 / 4, p / 8, p - p * 3 / 4 - p / 8};
  for (int i = 0; i < 3; ++i) {
    out.names.push_back("layer" + std::to_string(i));
    out.tensors.push_back(torch::randn({parts[i]}));
  }
  out.buffer_begin = out.size();
  return out;
}

void BM_Memcpy(benchmark::State& state) {
  const auto k = state.range(0), p = state.range(1);
  std::vector<std::vector<float>> clients(k, std::vector<float>(p, 1.0f));
  std::vector<float> dest(p);
  for (auto _ : state) {
    for (const auto& c : clients) {
      std::memcpy(dest.data(), c.data(), p * sizeof(float));
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(state.iterations() * k * p * static_cast<std::int64_t>(sizeof(float)));
}

void BM_FedAvg(benchmark::State& state) {
  const auto k = state.range(0), p = state.range(1);
  std::vector<fedtrack::Parameters> clients;
  for (int i = 0; i < k; ++i) clients.push_back(model(p, i));
  for (auto _ : state) {
    fedtrack::WeightedAverage avg(clients.front(), static_cast<double>(k * (k + 1) / 2));
    for (int i = 0; i < k; ++i) avg.add(clients[i], i + 1);
    benchmark::DoNotOptimize(avg.result());
  }
  state.SetBytesProcessed(state.iterations() * k * p * static_cast<std::int64_t>(sizeof(float)));
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int k : {10, 100}) {
    for (int p : {100'000, 1'000'000, 10'000'000}) {
      if (static_cast<long>(k) * p <= 200'000'000) b->Args({k, p});
    }
  }
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Memcpy)->Apply(shapes);
BENCHMARK(BM_FedAvg)->Apply(shapes);

// Keeps bytes/second per benchmark to print ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      auto it = run.counters.find("bytes_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
  }
  void PrintRatios() const {
    std::printf("\n%-8s %-12s %14s %14s %10s\n", "clients", "parameters", "memcpy GB/s", "fedavg GB/s",
                "ratio");
    for (const auto& [name, rate] : rates_) {
      if (name.rfind("BM_FedAvg/", 0) != 0) continue;
      const std::string shape = name.substr(std::strlen("BM_FedAvg/"));
      auto base = rates_.find("BM_Memcpy/" + shape);
      if (base == rates_.end()) continue;
      const auto slash = shape.find('/');
      std::printf("%-8s %-12s %14.2f %14.2f %10.3f\n", shape.substr(0, slash).c_str(),
                  shape.substr(slash + 1, shape.find('/', slash + 1) - slash - 1).c_str(),
                  base->second / 1e9, rate / 1e9, rate / base->second);
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);  // one core, like one aggregation on a busy server
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
