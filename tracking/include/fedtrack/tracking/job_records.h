// What a job's parent run carries besides metrics and params, as MLflow 3
// shows it: a readable unique run name and the datasets the job evaluated
// and trained on (as run inputs, by fingerprint: never the data).
// Pure functions; torch-free; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "fedtrack/core/model_card.h"
#include "fedtrack/core/round_listener.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// "<job name>-<short id>": the short id is the job id's last '-'-separated
// part (fedtrack's job ids are "<name>-<UTC time>-<6 random hex digits>"),
// or the whole job id when it does not start with "<job name>-". Two jobs
// of one name get different names; the job id stays in the fedtrack.job_id
// tag.
std::string parent_run_name(const std::string& job_name, const std::string& job_id);

// A dataset digest for MLflow (at most 36 characters): the first 16 hex
// digits of the SHA-256 fingerprint. The full fingerprint is in the profile.
std::string dataset_digest(const std::string& fingerprint);

// The input tag MLflow's UI shows as the dataset's context.
inline constexpr const char* kDatasetContextTag = "mlflow.data.context";

// The centralized test set: context "evaluation", source type "local" with
// {"uri": source}, and, when `card` is given, a TensorSpec schema like
// mlflow.data.from_numpy's (features float32 [-1, shape...], targets int64
// [-1]). The profile has num_rows, the shapes and fingerprint_sha256.
DatasetInput evaluation_input(const DatasetInfo& test, const ModelCard* card);

// A client's training data, known only by its fingerprint: name
// "<client id>-train", context "training", source type "fedtrack-site" with
// {"site": client id} (the data never leaves the site).
DatasetInput training_input(const std::string& client_id, const std::string& fingerprint, std::int64_t num_examples,
                            const ModelCard* card);

std::string training_dataset_name(const std::string& client_id);

}  // namespace fedtrack
