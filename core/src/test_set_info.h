// The centralized test set as tracking records it: a name, where it was read
// from and a fingerprint of its examples (never the examples). Private to core.
#pragma once

#include "fedtrack/core/datasets.h"
#include "fedtrack/core/job_spec.h"
#include "fedtrack/core/round_listener.h"

namespace fedtrack {

// name "<data.dataset>-test"; source the test file or IDX folder (URLs
// without credentials); fingerprint as training.h's fingerprint() of the
// whole split, computed in two streaming passes (labels, then features) so a
// streamed split is never copied whole into memory.
DatasetInfo test_set_info(const JobSpec& job, const TestSplit& test);

}  // namespace fedtrack
