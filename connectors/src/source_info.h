// Where a job came from, for MLflow's source tags. Torch-free.
#pragma once

#include <string>

namespace fedtrack {

// The commit checked out in the git work tree containing `path` (a file or
// folder), read from .git/HEAD and its ref; "" outside a repository or when
// HEAD names a ref with no commit yet.
std::string git_commit_of(const std::string& path);

// $USER, else the account name of the process's uid, else "".
std::string current_user();

}  // namespace fedtrack
