// The site's side of SecAgg+ in `fedtrack client` (net/secagg_stage.h is the
// server's): a fit task trains as usual but the result carries no model —
// the site keeps its trained model for the round, and the round's
// kSecAggTask stages feed it, clipped, quantized and masked, to the same
// SecAggClient the simulation runs (privacy/secagg/secagg_client.h). One
// protocol state per round: a new fit task replaces it, stage 4 wipes it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/site.h"

namespace fedtrack::secagg {
class SecAggClient;
}

namespace fedtrack::net {

class SecAggRound {
 public:
  SecAggRound();
  ~SecAggRound();
  SecAggRound(const SecAggRound&) = delete;
  SecAggRound& operator=(const SecAggRound&) = delete;

  // A fit task under SecAgg+: trains and holds the model; the result says
  // so (encoding kSecAggHeldEncoding, no payload). Failures become a
  // kTaskFailed result, never an exception.
  Result fit(const Site& site, ReceivedTask& received, const std::function<void(const std::string&)>& log);
  // A kSecAggTask: the stage's reply, or a kTaskFailed naming why not (no
  // model held for that round, a stage out of order, a request that fails
  // the client's checks).
  Result stage(TaskMessage& task, const std::function<void(const std::string&)>& log);

 private:
  void forget();

  std::string job_id_;
  std::int64_t round_ = -1;
  std::vector<float> update_;  // never leaves this object unmasked
  double num_examples_ = 0;
  std::uint64_t rounding_seed_ = 0;
  std::unique_ptr<secagg::SecAggClient> client_;
};

// Test seam for the dropout tests: with FEDTRACK_TEST_SECAGG_KILL_AFTER_STAGE=S
// in the environment the process SIGKILLs itself right after delivering
// its reply to stage S (a site that crashes mid-protocol).
void secagg_test_kill_after(const TaskMessage& task, const std::function<void(const std::string&)>& log);

}  // namespace fedtrack::net
