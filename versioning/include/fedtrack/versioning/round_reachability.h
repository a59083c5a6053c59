// Whether a versioned round can be restored from where it is recorded: its
// commit is in the model repository and its DVC object is in the cache or
// the repository's default remote. `fedtrack promote` checks this before it
// says a candidate passes, so a promotion never names a commit or an object
// nobody can fetch. Torch-free; libgit2 (+ the S3 remote).
#pragma once

#include <string>

namespace fedtrack {

struct RoundReachability {
  std::string repo;    // the local folder checked (a URL's cache)
  std::string commit;  // full sha
  std::string md5;     // what PATH.dvc records at the commit
  std::string object;  // where the object is: "the cache (...)" or the remote's description
};

// `repo` is a folder or a git URL (fetched into its cache first,
// repository_url.h). Checks, without downloading the model, that `commit`
// is in it, that `path`.dvc at that commit records `expected_md5` (when not
// empty), and that the object is in the cache (right size) or the default
// remote (a folder, or S3 answering HEAD with its size).
// Errors name the commit, the repository and what is missing:
//   kFailedPrecondition  no repository, commit not in it, no PATH.dvc at it,
//                        object neither in the cache nor the remote (or no
//                        remote configured);
//   kCorruption          PATH.dvc records another md5 than expected;
//   what the git server or the S3 remote answer (kUnauthenticated,
//   kUnavailable, ...) when they cannot be asked.
RoundReachability check_round_reachable(const std::string& repo, const std::string& commit, const std::string& path,
                                        const std::string& expected_md5);

}  // namespace fedtrack
