// Which commit, branch and repository a job's source was at, for MLflow's
// mlflow.source.git.* tags.
#pragma once

#include <string>

namespace fedtrack {

// The commit checked out (HEAD, branch or detached) in the git work tree that
// contains `path` (a file or folder, which need not exist yet), found through
// libgit2 (worktrees, packed refs and .git files included). "" outside a
// repository, when HEAD is a branch with no commit yet, or when the
// repository cannot be read: a source tag is never worth failing a job for.
std::string checked_out_commit(const std::string& path);

// The same repository's checked-out branch ("" when HEAD is detached) and
// the URL of its "origin" remote without credentials (redact_uri; "" when
// there is none): MLflow's mlflow.source.git.branch / repoURL, which
// MLflow's Python client also takes from "origin".
struct SourceRepository {
  std::string branch;
  std::string repo_url;
};
SourceRepository source_repository(const std::string& path);

}  // namespace fedtrack
