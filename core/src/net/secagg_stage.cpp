#include "net/secagg_stage.h"

#include <chrono>
#include <memory>
#include <thread>

#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/server.h"
#include "net/remote_site.h"
#include "privacy/secagg/secagg_server.h"

namespace fedtrack::net {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string whole_seconds(double s) {
  const auto whole = static_cast<long long>(s);
  return static_cast<double>(whole) == s ? std::to_string(whole) : std::to_string(s);
}

}  // namespace

SecureAggregationStep network_secure_aggregation(const SecureAggregationSpec& spec, std::uint64_t job_seed,
                                                 SiteLookup sites, std::function<void(const std::string&)> log) {
  return [spec, job_seed, sites = std::move(sites), log = std::move(log)](
             int round, const Parameters& global, std::vector<FitResult>& results,
             std::vector<ClientFailure>& failures, Metrics& metrics) {
    const auto start = SteadyClock::now();
    secagg::require_float32(global);
    const std::size_t n = results.size();
    const std::size_t dimension = static_cast<std::size_t>(global.numel());
    std::uint64_t bytes = 0;
    std::size_t dropouts = 0;
    double server_seconds = 0;
    auto timed = [&server_seconds](auto&& f) {
      const auto t0 = SteadyClock::now();
      f();
      server_seconds += std::chrono::duration<double>(SteadyClock::now() - t0).count();
    };
    auto say = [&](const std::string& line) {
      if (log) log("round " + std::to_string(round) + ": secure aggregation: " + line);
    };
    try {
      auto plan = secagg::plan_round(secagg::share_count(spec.num_shares),
                                     secagg::share_count(spec.reconstruction_threshold), n);
      secagg::SecAggServer server(static_cast<std::uint64_t>(round), n, plan, secagg::quantization_of(spec), dimension,
                                  task_seed(job_seed, round, "secure-aggregation-graph"));
      for (int stage = 1; stage <= 4; ++stage) {
        const auto ids = server.participants();
        std::vector<std::string> requests(ids.size()), replies(ids.size()), errors(ids.size());
        std::vector<std::uint64_t> sent(ids.size(), 0);
        timed([&] {
          for (std::size_t k = 0; k < ids.size(); ++k) requests[k] = server.request(ids[k]);
        });
        // Every site's stage at once: each waits for its own reply.
        const Deadline deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                     std::chrono::duration<double>(spec.timeout));
        std::vector<std::thread> waiting;
        for (std::size_t k = 0; k < ids.size(); ++k) {
          waiting.emplace_back([&, k] {
            const std::string& client = results[ids[k] - 1].client_id;
            try {
              RemoteSite* site = sites(client);
              if (!site) throw Error::unavailable("no such site");
              replies[k] = site->run_stage(round, stage, std::move(requests[k]), deadline, sent[k]);
            } catch (const std::exception& e) {
              errors[k] = SteadyClock::now() >= *deadline
                              ? "no reply within secure_aggregation.timeout (" + whole_seconds(spec.timeout) + " s)"
                              : std::string(e.what());
            }
          });
        }
        for (auto& t : waiting) t.join();
        timed([&] {
          for (std::size_t k = 0; k < ids.size(); ++k) {
            bytes += sent[k];
            const std::string& client = results[ids[k] - 1].client_id;
            if (!errors[k].empty()) {
              server.drop(ids[k], "stage " + std::to_string(stage) + ": " + errors[k]);
              say("client " + client + " dropped at stage " + std::to_string(stage) + ": " + errors[k]);
              continue;
            }
            try {
              server.accept(ids[k], replies[k]);
            } catch (const Error& e) {
              // accept() dropped the client; the round goes on without it.
              say("client " + client + " dropped at stage " + std::to_string(stage) + ": " + e.what());
            }
          }
        });
        timed([&] { server.close_stage(); });
      }
      secagg::SecAggResult outcome;
      timed([&] { outcome = server.result(); });
      dropouts = secagg::keep_summed(global, outcome, server, results, failures);
      say("summed " + std::to_string(outcome.summed.size()) + " of " + std::to_string(n) + " clients");
    } catch (const Error& e) {
      // Too few survivors (or no plan for this many clients): nothing of any
      // client is released.
      say(std::string("the round cannot complete: ") + e.what());
      dropouts = n;
      for (auto& r : results) {
        failures.push_back(ClientFailure{r.client_id, std::string("secure aggregation failed: ") + e.what(), r.transfer});
      }
      results.clear();
    }
    metrics["secagg_seconds"] = std::chrono::duration<double>(SteadyClock::now() - start).count();
    metrics["secagg_server_seconds"] = server_seconds;
    metrics["secagg_bytes"] = static_cast<double>(bytes);
    metrics["secagg_dropouts"] = static_cast<double>(dropouts);
  };
}

}  // namespace fedtrack::net
