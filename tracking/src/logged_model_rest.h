// The REST calls on MLflow 3 LoggedModels that only tracking's journal
// sync makes (the public ones are in logged_models.h). Private to tracking/.
// Every answer is parsed defensively: a shape that cannot be read is
// Error(kUnavailable) naming the call.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "fedtrack/tracking/logged_models.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

LoggedModelInfo parse_logged_model(const nlohmann::json& model);

// POST /mlflow/logged-models, one attempt (never resent: the id is the server's).
LoggedModelInfo create_logged_model(MlflowClient& client, const std::string& experiment_id, const std::string& name,
                                    const std::string& source_run_id, const std::vector<KeyValue>& tags,
                                    const std::vector<KeyValue>& params);
// PATCH /mlflow/logged-models/{id}: status LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.
void finalize_logged_model(MlflowClient& client, const std::string& model_id, const std::string& status);
void delete_logged_model(MlflowClient& client, const std::string& model_id);
// POST /mlflow/runs/outputs with one ModelOutput{model_id, step}; one attempt.
void log_model_output(MlflowClient& client, const std::string& run_id, const std::string& model_id, std::int64_t step);
// Whether runs/get lists that output already.
bool run_outputs_model(MlflowClient& client, const std::string& run_id, const std::string& model_id, std::int64_t step);
// runs/log-batch on `run_id` with every metric carrying `model_id`.
void log_model_metrics(MlflowClient& client, const std::string& run_id, const std::string& model_id,
                       const std::vector<Metric>& metrics);

}  // namespace fedtrack
