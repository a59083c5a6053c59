#include "privacy/secagg/secagg_round.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <map>
#include <memory>
#include <algorithm>
#include <random>

#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/server.h"
#include "privacy/secagg/secagg_client.h"
#include "privacy/secagg/secagg_server.h"

namespace fedtrack {
namespace secagg {


void require_float32(const Parameters& p) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p.tensors[i].scalar_type() != torch::kFloat32) {
      throw Error::invalid_argument("secure aggregation: tensor '" + p.names[i] +
                                    "' is not float32; only float32 models can be securely aggregated");
    }
  }
}

std::vector<float> flatten(const Parameters& p) {
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(p.numel()));
  for (const auto& t : p.tensors) {
    auto c = t.contiguous();
    const float* data = c.data_ptr<float>();
    out.insert(out.end(), data, data + c.numel());
  }
  return out;
}

Parameters unflatten(const Parameters& layout, const std::vector<float>& values) {
  Parameters out = clone(layout);
  std::size_t at = 0;
  for (auto& t : out.tensors) {
    std::memcpy(t.data_ptr<float>(), values.data() + at, static_cast<std::size_t>(t.numel()) * sizeof(float));
    at += static_cast<std::size_t>(t.numel());
  }
  return out;
}

QuantizationParams quantization_of(const SecureAggregationSpec& spec) {
  QuantizationParams q;
  q.clipping_range = spec.clipping_range;
  q.quantization_range = static_cast<std::uint64_t>(spec.quantization_range);
  q.modulus_range = static_cast<std::uint64_t>(spec.modulus_range);
  q.max_weight = spec.max_weight;
  return q;
}

ShareCount share_count(double value) { return {value, value <= 1}; }

std::uint64_t rounding_seed(std::int64_t fit_seed) { return static_cast<std::uint64_t>(fit_seed) ^ 0x5ec466ULL; }

}  // namespace secagg

using secagg::Stage;
using secagg::flatten;
using secagg::quantization_of;
using secagg::share_count;
using secagg::require_float32;
using secagg::unflatten;

SecureAggregationStep in_process_secure_aggregation(const SecureAggregationSpec& spec, std::uint64_t job_seed) {
  return [spec, job_seed](int round, const Parameters& global, std::vector<FitResult>& results,
                                        std::vector<ClientFailure>& failures, Metrics& metrics) {
    const auto start = std::chrono::steady_clock::now();
    require_float32(global);
    const std::size_t n = results.size();
    const std::size_t dimension = static_cast<std::size_t>(global.numel());
    auto fail_all = [&](const std::string& reason) {
      for (auto& r : results) failures.push_back(ClientFailure{r.client_id, reason, r.transfer});
      results.clear();
    };
    std::uint64_t bytes = 0;
    std::size_t dropouts = 0;
    double server_seconds = 0;  // the server's share: what a deployment adds to the server
    auto timed = [&server_seconds](auto&& f) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      server_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    try {
      auto plan = secagg::plan_round(share_count(spec.num_shares), share_count(spec.reconstruction_threshold), n);
      secagg::SecAggServer server(static_cast<std::uint64_t>(round), n, plan, quantization_of(spec), dimension,
                                  task_seed(job_seed, round, "secure-aggregation-graph"));
      std::vector<std::unique_ptr<secagg::SecAggClient>> clients;
      for (std::size_t i = 0; i < n; ++i) clients.push_back(std::make_unique<secagg::SecAggClient>());
      for (Stage stage : {Stage::kSetup, Stage::kShareKeys, Stage::kMaskedInput, Stage::kUnmask}) {
        // The server's requests, then every client's work at once (the sites
        // of a deployment work in parallel), then the server takes the replies.
        const auto ids = server.participants();
        std::vector<std::string> requests(ids.size()), replies(ids.size()), errors(ids.size());
        timed([&] {
          for (std::size_t k = 0; k < ids.size(); ++k) requests[k] = server.request(ids[k]);
        });
        auto work = [&](std::size_t k) {
          const std::uint32_t id = ids[k];
          auto& client = *clients[id - 1];
          const FitResult& mine = results[id - 1];
          try {
            switch (stage) {
              case Stage::kSetup: replies[k] = client.on_setup(requests[k]); break;
              case Stage::kShareKeys: replies[k] = client.on_share_keys(requests[k]); break;
              case Stage::kMaskedInput: {
                // The client's own plaintext: it never leaves this branch unmasked.
                auto update = flatten(mine.res.parameters);
                std::mt19937_64 rng(secagg::rounding_seed(
                    static_cast<std::int64_t>(task_seed(job_seed, round, mine.client_id) >> 1)));
                replies[k] = client.on_masked_input(requests[k], update.data(), update.size(),
                                                    static_cast<double>(mine.res.num_examples),
                                                    [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; });
                break;
              }
              default: replies[k] = client.on_unmask(requests[k]); break;
            }
          } catch (const std::exception& e) {
            errors[k] = std::string("client failed: ") + e.what();
          }
        };
        std::atomic<std::size_t> next{0};
        std::vector<std::thread> workers;
        const std::size_t threads = std::min<std::size_t>(ids.size(), std::max(1u, std::thread::hardware_concurrency()));
        for (std::size_t w = 0; w < threads; ++w) {
          workers.emplace_back([&] {
            for (std::size_t k = next++; k < ids.size(); k = next++) work(k);
          });
        }
        for (auto& t : workers) t.join();
        timed([&] {
          for (std::size_t k = 0; k < ids.size(); ++k) {
            if (!errors[k].empty()) {
              server.drop(ids[k], errors[k]);
              continue;
            }
            try {
              server.accept(ids[k], replies[k]);
            } catch (const Error&) {
              // accept() dropped the client; the round goes on without it.
            }
          }
        });
        timed([&] { server.close_stage(); });
      }
      secagg::SecAggResult outcome;
      timed([&] { outcome = server.result(); });
      bytes = server.bytes_sent() + server.bytes_received();
      dropouts = keep_summed(global, outcome, server, results, failures);
    } catch (const Error& e) {
      dropouts = n;
      fail_all(std::string("secure aggregation failed: ") + e.what());
    }
    metrics["secagg_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics["secagg_server_seconds"] = server_seconds;
    metrics["secagg_bytes"] = static_cast<double>(bytes);
    metrics["secagg_dropouts"] = static_cast<double>(dropouts);
  };
}

std::size_t secagg::keep_summed(const Parameters& global, const secagg::SecAggResult& outcome,
                                const secagg::SecAggServer& server,
                        std::vector<FitResult>& results, std::vector<ClientFailure>& failures) {
  const std::size_t n = results.size();
  auto mean = std::make_shared<Parameters>(secagg::unflatten(global, outcome.mean));
  std::vector<FitResult> kept;
  std::vector<bool> summed(n, false);
  for (auto id : outcome.summed) summed[id - 1] = true;
  std::size_t dropouts = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (summed[i]) {
      results[i].res.parameters = *mean;  // shares the tensors: read-only from here
      kept.push_back(std::move(results[i]));
    } else {
      auto why = server.dropped().find(static_cast<std::uint32_t>(i + 1));
      failures.push_back(ClientFailure{
          results[i].client_id,
          "secure aggregation: " + (why == server.dropped().end() ? std::string("dropped") : why->second),
          results[i].transfer});
      ++dropouts;
    }
  }
  results = std::move(kept);
  return dropouts;
}

}  // namespace fedtrack
