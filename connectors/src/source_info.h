// Where a job came from, for MLflow's source tags. Torch-free.
#pragma once

#include <string>

namespace fedtrack {

// $USER, else the account name of the process's uid, else "".
std::string current_user();

// The version of fedtrack that runs (the project version of its build), for
// the fedtrack.version tag.
std::string fedtrack_version();

}  // namespace fedtrack
