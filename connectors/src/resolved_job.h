// The job file as a job ran it: every key the params list, with the values
// resolved (overrides applied, tracking.uri / experiment from the
// environment) and secrets removed, as YAML that `fedtrack run` reads back.
// Torch-free.
#pragma once

#include <string>

#include "fedtrack/core/job_spec.h"

namespace fedtrack {

// Nested YAML in the schema's key order: one mapping per section, lists as
// sequences; text values pass through redact_secrets (URLs lose their
// userinfo and credential query values); empty values are left out (they
// read back as the default, which is what they were).
std::string resolved_job_yaml(const JobSpec& job);

}  // namespace fedtrack
