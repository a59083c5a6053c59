// ModelRepository — a git + DVC repository holding a job's global models,
// one commit and one annotated tag per round. Torch-free: models arrive as
// checkpoint bytes.
//
// What `commit_round` leaves is what `dvc add <path>` + `git commit` would:
// the model file (ignored by git through `/name` in the .gitignore beside
// it), its object in the DVC cache (.dvc/cache/files/md5/xx/..., mode 0444,
// written to a temporary name and renamed), `<path>.dvc` in DVC 3 format,
// DVCLive's files (dvclive/metrics.json, dvclive/params.yaml,
// dvclive/plots/metrics/<metric>.tsv; versioning/src/dvclive_layout.h)
// declared in dvc.yaml with the model under `artifacts:` (type model, named
// options.artifact), and a commit made with libgit2. A missing
// repository is created first (git init + the files `dvc init` makes).
//
// Crash recovery: opening the repository and committing a round each hold
// `<git dir>/fedtrack.lock` (flock; pid, host and start time recorded).
// Another live writer is waited for up to options.lock_wait_seconds, then
// Error(kUnavailable) "repository busy (pid N)"; its lock is never broken.
// After a fedtrack process was killed while holding it, the next one removes
// the git `*.lock` and libgit2 temporary files it left, the
// `*.tmp-<pid>-<n>` files of dead processes (work tree, DVC cache, the
// object's remote folder) and finishes a half-initialised repository; a
// git lock fedtrack did not leave is reported (kUnavailable when a live
// process holds it open, else kFailedPrecondition), never removed.
// Not thread-safe; one per job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fedtrack/core/lineage.h"
#include "fedtrack/core/records.h"

namespace fedtrack {

struct VersioningOptions {
  // The repository's folder, or a git URL (repository_url.h): then
  // fedtrack works in a cached clone of it and pushes (push is implied).
  std::string repo = "fedtrack-models";
  std::string path = "models/global.pt"; // the model, relative to the repository root
  // DVC remote each round's object is pushed to before its commit: a folder
  // or s3://bucket/prefix (settings from the .dvc/config section with that
  // url, see versioning/src/s3_remote.h), made the default remote; "" = the
  // repository's default remote (.dvc/config + config.local), if any.
  std::string remote;
  bool push = false;                     // push commits and tags to git remote `origin`
  std::string author;                    // "Name <email>" when git has no identity
  double lock_wait_seconds = 10;         // how long to wait for another live writer (then "repository busy")
  std::function<void(const std::string&)> log;  // one line per crash-recovery action; may be empty
  // The model's name in dvc.yaml's `artifacts:` (is_dvc_artifact_name,
  // dvc_artifacts.h); "" = artifact_name_for_job(the job's name).
  std::string artifact;
  // dvclive/params.yaml: the job config flattened as its MLflow params
  // (secrets are removed again when written); none = no params file.
  std::vector<std::pair<std::string, std::string>> params;
};

// A second file of a round committed beside the model (the round's ONNX
// export, versioning.export): its own `.dvc`, cache object and remote object
// the same way, and an entry of type model under `artifacts:` in dvc.yaml.
struct RoundOutput {
  std::string path;   // relative to the repository root, e.g. models/global.onnx
  std::string bytes;
};

// What commit_round recorded for one extra output.
struct RoundOutputCommit {
  std::string path;
  std::string md5;
  std::uint64_t size = 0;
};

struct RoundCommit {
  int round = 0;
  std::string commit;  // full sha
  std::string tag;     // fedtrack/<job>/round-003
  std::string md5;
  std::uint64_t size = 0;
  std::string path;    // relative to the repository root
  bool reused = false; // a re-run round: its existing commit and tag held the same model
  std::vector<RoundOutputCommit> outputs;  // the extra outputs, in the order given
};

struct HistoryEntry {
  std::string job_id;
  int round = 0;
  std::string tag;
  std::string commit;
  std::string md5;
  std::int64_t time = 0;  // commit time, seconds since the epoch
  Metrics metrics;
};

class ModelRepository {
 public:
  // Opens the repository at options.repo, creating it if missing. Error
  // naming the folder when it cannot. For a git URL, the cache is cloned or
  // fetched first (sync_repository_url) and options().repo is its folder.
  explicit ModelRepository(VersioningOptions options);
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  const VersioningOptions& options() const { return options_; }
  // Replaces options().params for the rounds committed from now on.
  void set_params(std::vector<std::pair<std::string, std::string>> params) { options_.params = std::move(params); }
  std::string root() const;  // absolute path of the work tree
  // Where others find the repository: its URL (without user info) when
  // options.repo was a URL, else root(). Recorded on the round runs.
  std::string location() const;

  // Writes, caches, commits and tags one round's global model. The commit
  // message ends with the round's Lineage trailers: job, round, md5 and path
  // from here, run_key / run_id / tracking_uri from `links` (when set). A round that already has
  // its tag (or is HEAD's untagged commit) with the same md5 is reused
  // (result.reused); with another md5 it is Error(kCorruption) naming the
  // tag, both md5s and what to do.
  // `outputs` (paths relative to the root, distinct from the model's and
  // each other's, outside .dvc/ and .git/) are cached, pushed and committed
  // with the model, each with its own `.dvc`; Error(kInvalidArgument) naming
  // a bad path before anything is written.
  RoundCommit commit_round(const std::string& job_id, const std::string& job_name, int round,
                           int total_rounds, const std::string& checkpoint_bytes, const Metrics& metrics,
                           const Lineage& links, const std::vector<RoundOutput>& outputs = {});

  // The tag name a job's round gets.
  static std::string tag_name(const std::string& job_id, int round);

 private:
  struct Git;
  VersioningOptions options_;
  std::string url_;  // options.repo as given when it was a git URL
  std::unique_ptr<Git> git_;
};

struct RestoreResult {
  std::string commit;
  std::string md5;
  std::uint64_t size = 0;
  std::string source;  // "cache" or "remote"
};

// Restores the file tracked as `path` (`path`.dvc) at git revision `rev`
// (sha, short sha, tag, branch, HEAD~2 ...) into `out`, from the DVC cache or,
// failing that, the default remote (a folder or S3), verifying its MD5; `out` is written
// atomically. The work tree is not touched. Errors write nothing:
// kNotFound (unknown revision, no such .dvc at it, object nowhere),
// kCorruption (every copy found fails its MD5).
RestoreResult restore_model(const std::string& repo, const std::string& rev, const std::string& path,
                            const std::string& out);

// Round commits, from the repository's fedtrack/* tags, oldest first.
std::vector<HistoryEntry> model_history(const std::string& repo);

// The md5 that `path`.dvc records at git revision `rev`, or nullopt when
// the repository, the revision or that .dvc at it does not exist.
// Error(kCorruption) for a .dvc it cannot read.
std::optional<std::string> recorded_md5(const std::string& repo, const std::string& rev, const std::string& path);

}  // namespace fedtrack
