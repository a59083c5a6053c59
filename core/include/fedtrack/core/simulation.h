// The simulation runtime: a whole federation in one process. Loads the
// dataset, partitions its training set among `clients.count` virtual clients
// (each keeps `data.val_fraction` of its share for federated evaluation;
// a client is built only when sampled, from a pool of `parallelism` model
// replicas, so memory does not grow with `clients.count`),
// and runs the shared Server round loop with the job's strategy, fitting
// clients concurrently on a thread pool sized to the machine; LibTorch's
// intra-op threads are set per pool thread so the two do not oversubscribe
// the cores. Results are aggregated in client-id order: the same JobSpec and
// seed give bit-identical metrics and model bytes.
//
// Torch-free header: callers (the CLI) need not compile against LibTorch.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/job_run.h"
#include "fedtrack/core/job_spec.h"

namespace fedtrack {

// Errors: kInvalidArgument / kNotFound for a job that cannot run (unknown
// model, missing dataset), prefixed with the job-file location of the key;
// kCancelled when stop_requested() turned true.
JobResult run_simulation(const JobSpec& job, const JobRunOptions& options);

}  // namespace fedtrack
