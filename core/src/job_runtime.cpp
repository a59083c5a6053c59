#include "job_runtime.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/strategy_factory.h"
#include "fedtrack/core/training.h"
#include "test_set_info.h"

namespace fedtrack {

ModelCard model_card_for(const JobSpec& job, const DatasetSplits& data) {
  ModelCard card;
  card.model = job.model;
  card.input_shape = data.feature_shape;
  card.num_classes = data.num_classes;
  card.data_format = data.format;
  card.dataset = job.data.dataset;
  card.scaling_mean = data.scaling.mean;
  card.scaling_stddev = data.scaling.stddev;
  card.feature_names = data.feature_names;
  card.class_names = data.class_names;
  if (card.class_names.empty() && job.data.dataset == "fashion-mnist" && data.num_classes == 10) {
    card.class_names = fashion_mnist_class_names();
  }
  return card;
}

ServerSide make_server_side(const JobSpec& job, const DatasetSplits& data,
                            const std::function<void(const std::string&)>& log) {
  ServerSide side;
  side.card = std::make_shared<const ModelCard>(model_card_for(job, data));
  side.test_set = std::make_shared<const DatasetInfo>(test_set_info(job, data.test));
  side.input = ModelInput{data.feature_shape, data.num_classes};
  torch::manual_seed(job.seed);
  side.model = at_key(job, "model", [&] { return make_model(job.model, side.input); });
  Parameters initial = parameters_from_module(*side.model.ptr());
  if (log) log("model " + job.model + ": " + std::to_string(initial.numel()) + " parameters");

  FedAvgOptions base;
  base.fraction_fit = job.clients.fraction_fit;
  base.fraction_evaluate = job.clients.fraction_evaluate;
  base.min_fit_clients = job.clients.min_fit;
  base.min_evaluate_clients = job.clients.min_evaluate;
  base.min_available_clients = job.clients.min_available;
  base.federated_evaluation = job.evaluation.federated;
  base.initial_parameters = std::move(initial);
  const TrainSpec train = job.train;
  base.on_fit_config = [train](int round) {
    return ConfigRecord{{"round", static_cast<std::int64_t>(round)},
                        {"epochs", train.epochs},
                        {"batch_size", train.batch_size},
                        {"lr", train.lr},
                        {"optimizer", train.optimizer},
                        {"momentum", train.momentum},
                        {"weight_decay", train.weight_decay}};
  };
  const std::int64_t eval_batch = job.evaluation.batch_size;
  base.on_evaluate_config = [eval_batch](int round) {
    return ConfigRecord{{"round", static_cast<std::int64_t>(round)}, {"batch_size", eval_batch}};
  };
  // Batches come from the split as it is stored (the server's: its IDX
  // bytes), never one float copy of the whole set.
  const ExampleSource test = data.test.examples();
  torch::nn::AnyModule model = side.model;
  base.evaluate_fn = [model, test, eval_batch](int, const Parameters& global) mutable {
    load_parameters(*model.ptr(), global);
    const LoopStats stats = evaluate_classifier(model, test, eval_batch);
    return std::optional<CentralEvaluation>(CentralEvaluation{stats.loss, {{"accuracy", stats.accuracy}}});
  };
  side.strategy = at_key(job, "strategy.name", [&] { return make_job_strategy(job, std::move(base)); });
  return side;
}

ServerOptions server_options_for(const JobSpec& job, const std::string& job_id) {
  ServerOptions o;
  o.job_id = job_id;
  o.job_name = job.name;
  o.num_rounds = static_cast<int>(job.rounds);
  o.evaluate_initial = job.evaluation.initial;
  o.min_fit_results = job.clients.min_fit;
  return o;
}

StateKeeper::StateKeeper(const std::string& path, bool resume, const JobSpec& job, const std::string& job_digest) {
  if (path.empty()) {
    if (resume) throw Error::invalid_argument("--resume needs a state file (server.state)");
    return;
  }
  const bool existed = std::filesystem::exists(path);
  if (resume && !existed) {
    throw Error::invalid_argument("--resume: no state file " + path + " (nothing to resume)");
  }
  path_ = path;
  std::optional<SavedState> saved;
  if (existed) {  // a new file is created by the first save: a job that fails before round 1 leaves none
    file_ = std::make_unique<ServerStateFile>(path);
    saved = file_->load();
  }
  if (!resume) {
    if (saved && !saved->finished) {
      throw Error::invalid_argument("state file " + path + " holds unfinished job " + saved->job_id + " (round " +
                                    std::to_string(saved->completed_round) + " of " +
                                    std::to_string(saved->total_rounds) +
                                    " done): pass --resume to continue it, or remove the file to start over");
    }
    saved_.job_name = job.name;
    saved_.job_digest = job_digest;
    saved_.total_rounds = static_cast<int>(job.rounds);
    return;
  }
  if (!saved) throw Error::invalid_argument("--resume: state file " + path + " is empty (nothing to resume)");
  if (saved->finished) {
    throw Error::invalid_argument("--resume: job " + saved->job_id + " in " + path +
                                  " already finished; remove the file to run it again");
  }
  if (saved->job_digest != job_digest) {
    throw Error::invalid_argument("--resume: " + path + " was saved for a different job (its keys changed: seed, data, "
                                  "model, clients, train, strategy or rounds); use the same job file");
  }
  saved_ = *saved;
  ResumePoint point;
  point.completed_round = saved->completed_round;
  point.sampler_state = saved->sampler_state;
  point.initial = saved->initial;
  point.rounds = saved->rounds;
  // The checksum held, so a decode error here is a file written wrong (or
  // forged with a matching checksum): still corruption, never a crash.
  const auto corrupt = [&](const std::string& what) {
    return Error::corruption("state file " + path + ": round " + std::to_string(saved->completed_round) + " " + what +
                             "; move it aside and start the job again without --resume");
  };
  try {
    point.global = decode_parameters(saved->model);
    point.strategy_state = decode_state(saved->strategy_state);
    decode_rng(saved->sampler_state);
    if (!saved->recorded && !saved->last_summary.empty()) point.unrecorded = decode_round_summary(saved->last_summary);
  } catch (const Error& e) {
    throw corrupt(std::string("is unreadable: ") + e.what());
  } catch (const std::exception& e) {
    throw corrupt(std::string("is unreadable (") + e.what() + ")");
  }
  point_ = std::move(point);
}

std::string StateKeeper::adopt_job_id(const std::string& fresh) {
  if (!point_) saved_.job_id = fresh;
  return saved_.job_id;
}

void StateKeeper::save(const ResumePoint& point) {
  if (path_.empty()) return;
  if (!file_) file_ = std::make_unique<ServerStateFile>(path_);
  saved_.completed_round = point.completed_round;
  saved_.finished = false;
  saved_.model = encode_parameters(point.global);
  saved_.strategy_state = encode_state(point.strategy_state);
  saved_.sampler_state = point.sampler_state;
  saved_.initial = point.initial;
  saved_.rounds = point.rounds;
  saved_.last_summary = point.unrecorded ? encode_round_summary(*point.unrecorded) : "";
  saved_.recorded = !point.unrecorded;
  file_->save(saved_);
  std::string().swap(saved_.model);  // written: marking the state later does not need the model's bytes again
}

void StateKeeper::recorded() {
  if (file_) file_->mark_recorded();
}

void StateKeeper::finished() {
  if (file_) file_->mark_finished();
}

void run_rounds(ClientManager& clients, Strategy& strategy, ServerOptions options, StateKeeper& state,
                const std::vector<RoundListener*>& listeners, const std::string& state_path,
                const std::function<void(const std::string&)>& log, JobResult& result) {
  options.on_round_complete = [&state](const ResumePoint& point) { state.save(point); };
  options.on_round_recorded = [&state](int) { state.recorded(); };  // on the recording thread
  // Test seam for kill points in the window "round N+1 trained, round N
  // still recording" (tests/integration/test_killpoints.py).
  options.hold_records_until_next_round = std::getenv("FEDTRACK_TEST_RECORD_AFTER_NEXT_ROUND") != nullptr;
  Server server(clients, strategy, options);
  for (auto* l : listeners) server.add_listener(l);
  const auto& resume = state.resume_point();
  if (resume) {
    result.resumed_after = resume->completed_round;
    if (log) {
      log("resuming job " + options.job_id + " after round " + std::to_string(resume->completed_round) + " from " +
          state_path);
    }
    // The state's checksum held; now the records the listeners keep of that
    // round (the model committed to git, the sha256 in the journal) must
    // agree with the model it restores.
    ResumeCheck check;
    check.job_id = options.job_id;
    check.round = resume->completed_round;
    check.state_path = state_path;
    auto global = std::make_shared<const Parameters>(resume->global);
    check.model = std::make_shared<const ModelSnapshot>([global, card = options.model_card] { return checkpoint_bytes(*global, card.get()); },
                                                        [global] { return encode_parameters(*global); });
    for (auto* l : listeners) l->check_resume(check);
  }
  ServerResult run = server.run(resume ? &*resume : nullptr);
  state.finished();
  result.initial = run.initial;
  result.rounds = run.rounds;
  if (!run.rounds.empty()) result.final_metrics = run.rounds.back().second;
  result.final_model = run.final_model;
}

}  // namespace fedtrack
