#include "net/secagg_site.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>

#include "fedtrack/core/error.h"
#include "fedtrack/core/parameters.h"
#include "fedtrack/core/text.h"
#include "privacy/secagg/secagg_client.h"
#include "privacy/secagg/secagg_round.h"

namespace fedtrack::net {
namespace {

Result answer_to(const TaskMessage& task) {
  Result r;
  r.job_id = task.head.job_id;
  r.task_id = task.head.task_id;
  r.round = task.head.round;
  return r;
}

Result failed(Result r, const TaskMessage& task, const std::string& why,
              const std::function<void(const std::string&)>& log) {
  r.kind = MessageKind::kTaskFailed;
  r.payload.clear();
  r.error = truncate_utf8(to_valid_utf8(why), kMaxErrorTextBytes);
  log("round " + std::to_string(task.head.round) + ": " + message_kind_name(task.head.kind) + " failed: " + why);
  return r;
}

}  // namespace

SecAggRound::SecAggRound() = default;
SecAggRound::~SecAggRound() { forget(); }

void SecAggRound::forget() {
  std::fill(update_.begin(), update_.end(), 0.0f);
  update_.clear();
  client_.reset();
  round_ = -1;
}

Result SecAggRound::fit(const Site& site, ReceivedTask& received,
                        const std::function<void(const std::string&)>& log) {
  TaskMessage& task = received.message;
  forget();  // a new round: whatever the last one left is gone
  Result result = answer_to(task);
  const auto start = std::chrono::steady_clock::now();
  try {
    if (!received.rejection.empty()) throw Error::invalid_argument(received.rejection);
    // The model read straight into the site's inbox (read_task), or its bytes.
    const Parameters global = received.in_inbox ? *site.inbox : decode_parameters(task.payload);
    std::string().swap(task.payload);
    FitRes res = site.app->fit(global, task.head.config);
    secagg::require_float32(res.parameters);
    update_ = secagg::flatten(res.parameters);  // what the simulation feeds the protocol: the trained model
    num_examples_ = static_cast<double>(res.num_examples);
    // The same rounding draws as `fedtrack run` gives this client in this round.
    auto seed = task.head.config.find("seed");
    const auto* fit_seed = seed == task.head.config.end() ? nullptr : std::get_if<std::int64_t>(&seed->second);
    rounding_seed_ = fit_seed ? secagg::rounding_seed(*fit_seed) : std::random_device{}();
    job_id_ = task.head.job_id;
    round_ = task.head.round;
    result.kind = MessageKind::kFitResult;
    result.num_examples = res.num_examples;
    result.data_fingerprint = res.data_fingerprint;
    result.metrics = std::move(res.metrics);
    result.encoding = kSecAggHeldEncoding;
    result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } catch (const std::exception& e) {
    forget();
    return failed(std::move(result), task, e.what(), log);
  }
  return result;
}

Result SecAggRound::stage(TaskMessage& task, const std::function<void(const std::string&)>& log) {
  Result result = answer_to(task);
  result.kind = MessageKind::kSecAggResult;
  result.stage = task.head.stage;
  try {
    if (round_ < 0 || task.head.round != round_ || task.head.job_id != job_id_) {
      throw Error::failed_precondition("no trained model held for round " + std::to_string(task.head.round) +
                                       " (this site's fit result for it was lost or never made)");
    }
    switch (task.head.stage) {
      case 1:
        client_ = std::make_unique<secagg::SecAggClient>();
        result.payload = client_->on_setup(task.payload);
        break;
      case 2:
      case 3:
      case 4:
        if (!client_) throw Error::failed_precondition("stage " + std::to_string(task.head.stage) + " before stage 1");
        if (task.head.stage == 2) {
          result.payload = client_->on_share_keys(task.payload);
        } else if (task.head.stage == 3) {
          std::mt19937_64 rng(rounding_seed_);
          result.payload = client_->on_masked_input(task.payload, update_.data(), update_.size(), num_examples_,
                                                    [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; });
        } else {
          result.payload = client_->on_unmask(task.payload);
          forget();  // the round's protocol is over for this site
        }
        break;
      default:
        throw Error::corruption("unknown secure aggregation stage " + std::to_string(task.head.stage));
    }
  } catch (const std::exception& e) {
    if (task.head.round == round_) forget();  // a failed stage ends this site's part in the round
    return failed(std::move(result), task, std::string("secure aggregation: ") + e.what(), log);
  }
  return result;
}

void secagg_test_kill_after(const TaskMessage& task, const std::function<void(const std::string&)>& log) {
  if (task.head.kind != MessageKind::kSecAggTask) return;
  const char* at = std::getenv("FEDTRACK_TEST_SECAGG_KILL_AFTER_STAGE");
  if (!at || std::to_string(task.head.stage) != at) return;
  log("FEDTRACK_TEST_SECAGG_KILL_AFTER_STAGE=" + std::string(at) + ": killing this client (SIGKILL)");
  ::kill(::getpid(), SIGKILL);
}

}  // namespace fedtrack::net
