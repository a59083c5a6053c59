// Where a job came from, for MLflow's source tags. Torch-free.
#pragma once

#include <string>

namespace fedtrack {

// $USER, else the account name of the process's uid, else "".
std::string current_user();

}  // namespace fedtrack
