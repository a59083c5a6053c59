// Which commit a job's source was at, for MLflow's mlflow.source.git.commit.
#pragma once

#include <string>

namespace fedtrack {

// The commit checked out (HEAD, branch or detached) in the git work tree that
// contains `path` (a file or folder, which need not exist yet), found through
// libgit2 (worktrees, packed refs and .git files included). "" outside a
// repository, when HEAD is a branch with no commit yet, or when the
// repository cannot be read: a source tag is never worth failing a job for.
std::string checked_out_commit(const std::string& path);

}  // namespace fedtrack
