// RepositoryLock — one fedtrack process at a time writes into a model
// repository, and what a killed one left behind is cleaned up by the next.
//
// The lock is `<git dir>/fedtrack.lock`, held with flock(2) for the duration
// of one piece of work (opening/creating the repository, committing a
// round). The kernel drops a flock when its process dies, so a lock whose
// owner is dead is never mistaken for a live one (no pid probing, no pid
// reuse problem); the file records the owner (pid, host, process start time,
// since) for messages. A clean release unlinks the file before unlocking,
// so finding a lock file that still holds an owner record, with no flock on
// it, means its owner died while working: `stale()` returns that record, and
// recover_after_crash() removes what the dead process left in the git dir
// (git's `*.lock` files, libgit2's `tmp_object_git2_*` and `_git2_*` probe
// files) created after it took the lock and not held open by any live
// process. Anything else that blocks git is reported, never removed.
//
// A lock held by a live process is waited for up to `wait`, then
// Error(kUnavailable) "repository busy" naming the lock file and the pid.
// Not thread-safe; one per piece of work. Linux (flock, /proc).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace fedtrack {

struct LockOwner {
  long pid = 0;
  std::string host;
  std::string since;  // UTC, ISO 8601
  long long start_ticks = 0;  // /proc/<pid>/stat field 22
};

class RepositoryLock {
 public:
  RepositoryLock(const std::string& git_dir, std::chrono::milliseconds wait);
  ~RepositoryLock();  // unlinks the file, then unlocks
  RepositoryLock(const RepositoryLock&) = delete;
  RepositoryLock& operator=(const RepositoryLock&) = delete;

  const std::string& path() const { return path_; }
  // The owner that died holding the lock, if the previous holder did.
  const std::optional<LockOwner>& stale() const { return stale_; }
  // When the dead owner's record was written (its file's mtime), in ns.
  long long stale_since_ns() const { return stale_since_ns_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::optional<LockOwner> stale_;
  long long stale_since_ns_ = 0;
};

// After taking `lock`: removes what a dead owner left in `git_dir` (see
// above) and returns one line per file removed. Then, dead owner or not,
// Error(kUnavailable) naming a git lock file a live process holds open, or
// Error(kFailedPrecondition) naming one nobody holds that fedtrack did not
// leave (remove it by hand if no git process runs in the repository).
std::vector<std::string> recover_git_dir(const std::string& git_dir, const std::string& work_tree,
                                         const RepositoryLock& lock);

// Removes `*.tmp-<pid>-<n>` files (write_file_atomically's temporaries)
// directly in `folder` whose process is not alive; returns their paths.
// Call only while holding the repository lock.
std::vector<std::string> remove_dead_temporaries(const std::string& folder);

// The pids of live processes that have `path` open (from /proc/*/fd; only
// the processes this user may inspect).
std::vector<long> pids_holding_open(const std::string& path);

}  // namespace fedtrack
