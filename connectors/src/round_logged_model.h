// The MLflow 3 LoggedModel a job logged for one round (tracking.log_models),
// as `fedtrack promote` registers it instead of uploading the checkpoint a
// second time. Private to connectors.
#pragma once

#include <optional>
#include <string>

#include "fedtrack/core/lineage.h"
#include "fedtrack/tracking/logged_models.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// The READY LoggedModel of `lineage`'s job and round in `experiment_id`
// holding the committed checkpoint (its fedtrack.dvc.md5 is lineage.md5);
// the earliest made when several do. nullopt when the round has none (it
// was not logged, or not yet sent, or its upload failed). MLflow's errors
// pass through, except a server without LoggedModels (MLflow 2: not found
// / bad request), which has none.
std::optional<LoggedModelInfo> round_logged_model(MlflowClient& client, const std::string& experiment_id,
                                                  const Lineage& lineage);

}  // namespace fedtrack
