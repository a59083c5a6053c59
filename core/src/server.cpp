#include "fedtrack/core/server.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <numeric>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/strategy.h"
#include "recording_queue.h"
#include "ordered_fold.h"
#include "thread_pool.h"

namespace fedtrack {
namespace {

using Clock = std::chrono::steady_clock;

// What a round's transfers would have weighed uncompressed: with
// compression on, compression_ratio_down / _up = uncompressed / sent bytes.
struct UncompressedBytes {
  std::uint64_t down = 0, up = 0;
  bool compressed = false;
  void add(const TransferStats& t) {
    compressed = compressed || t.raw_bytes_down > 0 || t.raw_bytes_up > 0;
    down += t.raw_bytes_down > 0 ? t.raw_bytes_down : t.bytes_down;
    up += t.raw_bytes_up > 0 ? t.raw_bytes_up : t.bytes_up;
  }
  void report(std::uint64_t sent_down, std::uint64_t sent_up, Metrics& metrics) const {
    if (!compressed) return;
    if (sent_down > 0) metrics["compression_ratio_down"] = static_cast<double>(down) / static_cast<double>(sent_down);
    if (sent_up > 0) metrics["compression_ratio_up"] = static_cast<double>(up) / static_cast<double>(sent_up);
  }
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Centralized metrics become eval_loss, eval_<name>.
void put_central(Metrics& out, const std::optional<CentralEvaluation>& eval) {
  if (!eval) return;
  out["eval_loss"] = eval->loss;
  for (const auto& [k, v] : eval->metrics) out["eval_" + k] = v;
}

std::shared_ptr<const ModelSnapshot> snapshot_of(const Parameters& params, std::shared_ptr<const ModelCard> card) {
  auto shared = std::make_shared<const Parameters>(params);
  return std::make_shared<const ModelSnapshot>([shared, card] { return checkpoint_bytes(*shared, card.get()); },
                                               [shared] { return encode_parameters(*shared); });
}

template <typename Result>
struct Outcome {
  std::optional<Result> ok;
  std::optional<ClientFailure> failed;
};

struct NoFollowUp {
  template <typename Out>
  void operator()(std::size_t, Out&) const {}
};

// Runs `call(instruction, transfer)` for every instruction on the pool and
// returns the outcomes in instruction (= client-id) order; whatever a call
// throws becomes that client's failure. `done(index, outcome)` runs on the
// worker as each call ends (the streaming fold takes the update there).
template <typename Result, typename Instruction, typename Call, typename Done = NoFollowUp>
std::vector<Outcome<Result>> run_on_clients(ThreadPool& pool, const std::vector<Instruction>& plan,
                                            Call call, Done done = {}) {
  // Largest expected work first (longest-processing-time scheduling), ties
  // in id order; the outcomes keep the plan's order.
  std::vector<std::size_t> order(plan.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&plan](std::size_t a, std::size_t b) {
    return plan[a].client->expected_work() > plan[b].client->expected_work();
  });
  std::vector<std::future<Outcome<Result>>> futures(plan.size());
  for (const std::size_t index : order) {
    const auto& ins = plan[index];
    futures[index] = pool.submit([&call, &ins, &done, index] {
      Outcome<Result> out;
      TransferStats transfer;
      const auto start = Clock::now();
      const std::string& id = ins.client->id();
      try {
        auto res = call(ins, transfer);
        transfer.seconds = seconds_since(start);
        out.ok = Result{id, std::move(res), transfer};
      } catch (const Error& e) {
        transfer.seconds = seconds_since(start);
        out.failed = ClientFailure{id, e.what(), transfer, e.code()};
      } catch (const std::exception& e) {
        transfer.seconds = seconds_since(start);
        out.failed = ClientFailure{id, e.what(), transfer};
      }
      done(index, out);
      return out;
    });
  }
  std::vector<Outcome<Result>> outcomes;
  outcomes.reserve(futures.size());
  for (auto& f : futures) outcomes.push_back(f.get());
  return outcomes;
}

// A job that stops (an error, a stop request) first lets the record in
// flight finish, so every listener hears on_job_end after the last round it
// recorded; a failure of that record is added to the job's error.
std::string drain(RecordingQueue& recording) {
  try {
    recording.wait();
  } catch (const std::exception& e) {
    return std::string("; recording the previous round failed too: ") + e.what();
  }
  return "";
}

Deadline deadline_after(double seconds) {
  if (!(seconds > 0)) return std::nullopt;
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t task_seed(std::uint64_t job_seed, int round, const std::string& client_id) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the client id
  for (unsigned char c : client_id) h = (h ^ c) * 0x100000001b3ull;
  return splitmix(splitmix(job_seed) ^ splitmix(static_cast<std::uint64_t>(round) + 0x51ed) ^ h);
}

Server::Server(ClientManager& clients, Strategy& strategy, ServerOptions options)
    : clients_(clients), strategy_(strategy), options_(std::move(options)) {
  if (options_.num_rounds < 1) throw Error::invalid_argument("server: num_rounds must be >= 1");
  if (options_.parallelism == 0) options_.parallelism = 1;
}

void Server::add_listener(RoundListener* listener) { listeners_.push_back(listener); }

void Server::check_stop() const {
  if (options_.stop_requested && options_.stop_requested()) {
    throw Error::cancelled("stopped by request");
  }
}

ServerResult Server::run(const ResumePoint* resume) {
  ServerResult result;
  JobEnd end;
  JobStart start{options_.job_id, options_.job_name, options_.num_rounds};
  if (options_.model_card) start.params = model_card_params(*options_.model_card);
  start.model_card = options_.model_card;
  start.test_set = options_.test_set;
  if (resume) {
    start.resumed = true;
    start.completed_rounds = resume->completed_round;
    end.rounds_completed = resume->completed_round;
  }
  for (auto* l : listeners_) l->on_job_start(start);
  // Round N's listeners run here while round N+1 trains (recording_queue.h).
  RecordingQueue recording(options_.hold_records_until_next_round);
  try {
    Parameters global;
    int first_round = 1;
    if (resume) {
      global = clone(resume->global);
      strategy_.restore_state(global, resume->strategy_state);
      clients_.restore_rng_state(resume->sampler_state);
      result.initial = resume->initial;
      result.rounds = resume->rounds;
      if (!resume->rounds.empty()) end.final_metrics = resume->rounds.back().second;
      result.final_model = snapshot_of(global, options_.model_card);
      first_round = resume->completed_round + 1;
      if (resume->unrecorded) {  // recorded partly or not at all before the stop
        RoundSummary replay = *resume->unrecorded;
        replay.model = result.final_model;
        for (auto* l : listeners_) l->on_round(replay);
        if (options_.on_round_recorded) options_.on_round_recorded(replay.round);
      }
    } else {
      auto initial = strategy_.initialize_parameters(clients_);
      if (!initial) {
        throw Error::failed_precondition("strategy '" + strategy_.name() +
                                         "' gave no initial parameters");
      }
      global = std::move(*initial);
      if (options_.evaluate_initial) {
        Metrics metrics;
        put_central(metrics, strategy_.evaluate(0, global));
        if (!metrics.empty()) {
          result.initial = metrics;
          for (auto* l : listeners_) l->on_initial_evaluation(metrics);
        }
      }
    }
    for (int round = first_round; round <= options_.num_rounds; ++round) {
      check_stop();
      recording.rethrow_if_failed();  // a failed record stops the job before another round
      if (options_.before_round) options_.before_round(round);
      check_stop();
      RoundSummary summary;
      Metrics metrics = run_round(round, global, summary);
      result.rounds.emplace_back(round, metrics);
      result.final_model = summary.model;
      // The previous round is recorded before this round's resume point is
      // saved: the state file never names two rounds that may be unrecorded.
      recording.wait();
      end.rounds_completed = round;
      end.final_metrics = metrics;
      if (options_.on_round_complete) {
        ResumePoint point;
        point.completed_round = round;
        point.global = global;  // shares the tensors; the callback only reads them
        point.strategy_state = strategy_.save_state();
        point.sampler_state = clients_.rng_state();
        point.initial = result.initial;
        point.rounds = result.rounds;
        point.unrecorded = summary;
        options_.on_round_complete(point);
      }
      recording.push([this, recorded = std::make_shared<const RoundSummary>(std::move(summary))] {
        for (auto* l : listeners_) l->on_round(*recorded);
        if (options_.on_round_recorded) options_.on_round_recorded(recorded->round);
      });
    }
    recording.wait();  // the last round's record
    result.parameters = std::move(global);
  } catch (const Error& e) {
    end.status = e.code() == ErrorCode::kCancelled ? JobStatus::kKilled : JobStatus::kFailed;
    end.error = e.what() + drain(recording);
    for (auto* l : listeners_) l->on_job_end(end);
    throw;
  } catch (const std::exception& e) {
    end.status = JobStatus::kFailed;
    end.error = e.what() + drain(recording);
    for (auto* l : listeners_) l->on_job_end(end);
    throw;
  }
  for (auto* l : listeners_) l->on_job_end(end);
  return result;
}

Metrics Server::run_round(int round, Parameters& global, RoundSummary& summary) {
  const auto round_start = Clock::now();
  summary.round = round;
  summary.total_rounds = options_.num_rounds;
  ThreadPool pool(options_.parallelism, options_.on_worker_start);
  auto shared_global = std::make_shared<const Parameters>(global);

  // --- fit ---
  const auto fit_start = Clock::now();
  auto fit_plan = strategy_.configure_fit(round, shared_global, clients_);
  if (fit_plan.empty()) {
    throw Error::failed_precondition("round " + std::to_string(round) + ": no clients were sampled");
  }
  summary.fit_config = fit_plan.front().ins.config;
  const Deadline fit_deadline = deadline_after(options_.round_timeout);
  for (auto& ins : fit_plan) {
    ins.ins.deadline = fit_deadline;
    if (options_.task_seed) {
      ins.ins.config["seed"] = static_cast<std::int64_t>(task_seed(*options_.task_seed, round, ins.client->id()) >> 1);
    }
  }
  // Streaming aggregation when the strategy folds (update_fold.h): each
  // checked update is folded in client-id order as it arrives and released.
  // Not with secure aggregation: its step replaces the results' parameters
  // with the secure mean after the fit phase, then the strategy aggregates.
  std::unique_ptr<UpdateFold> fold =
      options_.secure_aggregation ? nullptr : strategy_.begin_fit_fold(round, *shared_global);
  std::shared_ptr<OrderedFold> ordered;
  if (fold) {
    ordered = std::make_shared<OrderedFold>(*fold, fit_plan.size());
    for (std::size_t i = 0; i < fit_plan.size(); ++i) {
      fit_plan[i].ins.before_upload = [ordered, i] { ordered->wait_turn(i); };
    }
  }
  struct CloseFold {  // on every way out: no upload waits for a round that ended
    std::shared_ptr<OrderedFold> fold;
    ~CloseFold() {
      if (fold) fold->close();
    }
  } close_fold{ordered};
  auto take_update = [&ordered](std::size_t index, Outcome<FitResult>& out) {
    if (!ordered) return;
    if (!out.ok) return ordered->failed(index);
    FitResult update;  // the tensors move to the fold; the outcome keeps the rest
    update.client_id = out.ok->client_id;
    update.res.parameters = std::move(out.ok->res.parameters);
    update.res.num_examples = out.ok->res.num_examples;
    update.res.metrics = out.ok->res.metrics;
    ordered->arrived(index, std::move(update));
  };
  auto fit_outcomes = run_on_clients<FitResult>(
      pool, fit_plan, [&](const FitInstruction& ins, TransferStats& transfer) {
        FitRes res = ins.client->fit(ins.ins, transfer);
        const std::string who = "client " + ins.client->id();
        check_update(*shared_global, res.parameters, who);
        if (res.num_examples <= 0) {
          throw Error::invalid_argument(who + ": reported num_examples " +
                                        std::to_string(res.num_examples));
        }
        return res;
      },
      take_update);
  std::vector<FitResult> results;
  std::vector<ClientFailure> failures;
  UncompressedBytes uncompressed;
  double slowest_train = 0;
  double slowest_download = 0;
  double upload_seconds = 0;  // fit uploads are read one at a time when the strategy folds
  for (auto& o : fit_outcomes) {
    ClientRoundStat stat;
    const TransferStats& transfer = o.ok ? o.ok->transfer : o.failed->transfer;
    stat.client_id = o.ok ? o.ok->client_id : o.failed->client_id;
    stat.bytes_down = transfer.bytes_down;
    stat.bytes_up = transfer.bytes_up;
    stat.fit_seconds = transfer.seconds;
    if (o.ok) slowest_train = std::max(slowest_train, transfer.train_seconds);
    slowest_download = std::max(slowest_download, transfer.download_seconds);
    upload_seconds += transfer.upload_seconds;
    if (o.ok) {
      stat.num_examples = o.ok->res.num_examples;
      stat.fit_metrics = o.ok->res.metrics;
      stat.data_fingerprint = o.ok->res.data_fingerprint;
      results.push_back(std::move(*o.ok));
    } else {
      stat.ok = false;
      stat.error = o.failed->reason;
      failures.push_back(std::move(*o.failed));
    }
    summary.bytes_down += stat.bytes_down;
    summary.bytes_up += stat.bytes_up;
    uncompressed.add(transfer);
    summary.clients.push_back(std::move(stat));
  }
  summary.fit_seconds = seconds_since(fit_start);
  check_stop();
  Metrics secure_metrics;
  if (options_.secure_aggregation) options_.secure_aggregation(round, *shared_global, results, failures, secure_metrics);
  if (static_cast<std::int64_t>(results.size()) < options_.min_fit_results) {
    std::string reasons;
    for (const auto& f : failures) reasons += "; " + f.client_id + ": " + f.reason;
    // Every failed client diverged (its loss went NaN): the job's settings
    // (e.g. train.lr) cannot work, which retrying will not change.
    bool diverged = !failures.empty();
    for (const auto& f : failures) diverged = diverged && f.code == ErrorCode::kFailedPrecondition;
    throw Error(diverged ? ErrorCode::kFailedPrecondition : ErrorCode::kUnavailable,
                "round " + std::to_string(round) + ": " + std::to_string(results.size()) + " of " +
                    std::to_string(fit_plan.size()) + " sampled clients returned a result, fewer than " +
                    "clients.min_fit = " + std::to_string(options_.min_fit_results) + reasons);
  }

  // --- aggregate ---
  const auto aggregate_start = Clock::now();
  AggregateFitOutcome aggregated;
  if (ordered) {
    ordered->folded();  // rethrows a fold's error
    aggregated = strategy_.finish_fit_fold(round, *fold, results, failures);
  } else {
    aggregated = strategy_.aggregate_fit(round, results, failures);
  }
  fold.reset();
  results.clear();  // release the client models before evaluating
  if (aggregated.parameters) {
    check_layout(*shared_global, *aggregated.parameters, "strategy '" + strategy_.name() + "'");
    global = std::move(*aggregated.parameters);
  }
  summary.aggregate_seconds = seconds_since(aggregate_start);

  // --- evaluate ---
  const auto evaluate_start = Clock::now();
  Metrics metrics;
  put_central(metrics, strategy_.evaluate(round, global));
  auto new_global = std::make_shared<const Parameters>(global);
  auto eval_plan = strategy_.configure_evaluate(round, new_global, clients_);
  if (!eval_plan.empty()) {
    const Deadline eval_deadline = deadline_after(options_.round_timeout);
    for (auto& ins : eval_plan) ins.ins.deadline = eval_deadline;
    auto eval_outcomes = run_on_clients<EvaluateResult>(
        pool, eval_plan, [](const EvaluateInstruction& ins, TransferStats& transfer) {
          return ins.client->evaluate(ins.ins, transfer);
        });
    std::vector<EvaluateResult> eval_results;
    std::vector<ClientFailure> eval_failures;
    for (auto& o : eval_outcomes) {
      const auto& transfer = o.ok ? o.ok->transfer : o.failed->transfer;
      summary.bytes_down += transfer.bytes_down;
      summary.bytes_up += transfer.bytes_up;
      uncompressed.add(transfer);
      if (o.ok) {
        for (auto& stat : summary.clients) {
          if (stat.client_id == o.ok->client_id) {
            stat.evaluate_metrics = o.ok->res.metrics;
            stat.evaluate_metrics["loss"] = o.ok->res.loss;
          }
        }
        eval_results.push_back(std::move(*o.ok));
      } else {
        eval_failures.push_back(std::move(*o.failed));
      }
    }
    auto federated = strategy_.aggregate_evaluate(round, eval_results, eval_failures);
    if (federated.loss) metrics["federated_eval_loss"] = *federated.loss;
    for (const auto& [k, v] : federated.metrics) metrics["federated_eval_" + k] = v;
  }
  summary.evaluate_seconds = seconds_since(evaluate_start);

  for (const auto& [k, v] : aggregated.metrics) metrics[k] = v;  // train_loss, train_accuracy, ...
  metrics["clients_sampled"] = static_cast<double>(fit_plan.size());
  metrics["clients_ok"] = static_cast<double>(fit_plan.size() - failures.size());
  metrics["clients_failed"] = static_cast<double>(failures.size());
  metrics["bytes_down"] = static_cast<double>(summary.bytes_down);
  metrics["bytes_up"] = static_cast<double>(summary.bytes_up);
  uncompressed.report(summary.bytes_down, summary.bytes_up, metrics);
  summary.round_seconds = seconds_since(round_start);
  metrics["round_seconds"] = summary.round_seconds;
  for (const auto& [k, v] : secure_metrics) metrics[k] = v;  // secagg_seconds, secagg_bytes, secagg_dropouts
  metrics["slowest_train_seconds"] = slowest_train;
  if (slowest_download > 0) metrics["broadcast_seconds"] = slowest_download;  // the model reached every fit client
  if (upload_seconds > 0) metrics["upload_seconds"] = upload_seconds;          // the server reading the fit results
  summary.metrics = metrics;
  summary.model = snapshot_of(global, options_.model_card);
  return metrics;
}

}  // namespace fedtrack

