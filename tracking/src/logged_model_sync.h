// Sending a logged model's journalled writes (see logged_models.h for what
// each does and why it happens exactly once). Private to tracking/: called
// by JournalSync for ops whose kind is_logged_model_write(), in order with
// the other writes of the job's run.
#pragma once

#include <string>
#include <vector>

#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// model_create, model_upload, model_finalize, model_link, model_metrics and
// the check model_verify.
bool is_logged_model_write(const std::string& op);

// Sends `op`, a write of `job`'s run. Errors as for the other writes: a
// payload that does not decode is Error(kCorruption) naming the journal and
// the seq; a model or a run the server never made is kFailedPrecondition;
// the server's own errors pass through. Returns notes worth telling (a
// duplicate model deleted).
std::vector<std::string> send_logged_model_write(Journal& journal, MlflowClient& client, const JournalOp& op,
                                                 const JournalRun& job);

}  // namespace fedtrack
