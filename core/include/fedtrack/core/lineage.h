#pragma once
// Lineage: the link between one round's MLflow run and its git commit.
//
// A round leaves the same facts in two places: as tags on its MLflow round
// run (and on a registry model version made from it), and as trailers at the
// end of its git commit message. This header is the one place that names
// them; tracking, versioning and connectors read and write them through
// Lineage, never by spelling a key. Torch-free, so every module may use it.
//
// The key names and value formats are frozen: runs and commits written by
// earlier fedtrack versions must keep reading the same.
//
//   field         run / model-version tag   commit trailer
//   job_id        fedtrack.job_id           fedtrack-job
//   round         fedtrack.round            fedtrack-round
//   md5           fedtrack.dvc.md5          fedtrack-md5
//   path          fedtrack.dvc.path         fedtrack-path
//   commit        fedtrack.git.commit       -
//   tag           fedtrack.git.tag          -
//   repo          fedtrack.dvc.repo         -
//   run_key       (fedtrack.run_key, the    fedtrack-run-key
//                 run's identity tag)
//   run_id        (the run itself)          mlflow-run-id
//   parent_run_id (mlflow.parentRunId)      mlflow-parent-run-id
//   tracking_uri  -                         mlflow-tracking-uri
//   aggregation   -                         fedtrack-aggregation
//                 ("secaggplus" when the round was securely aggregated;
//                 absent for plain rounds, as every commit before it)
//   model_sha256  fedtrack.model_sha256     -
//   (model key)   fedtrack.model_key: a logged model's identity tag (see
//                 tracking/logged_models.h), like fedtrack.run_key for runs
//
// Secrets never travel: repo and tracking_uri pass through redact_uri both
// when written and when read. A value is one line: a line break in a value
// (never produced by fedtrack) becomes a space when written as a trailer.
// Plain values; no shared state; thread-safe.
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fedtrack {

// The tag keys, for the few callers that need a key rather than a Lineage
// (an MLflow search filter, the run-identity tag of tracking's journal).
namespace lineage_tag {
extern const char* const kJobId;        // "fedtrack.job_id"
extern const char* const kRound;        // "fedtrack.round"
extern const char* const kRunKey;       // "fedtrack.run_key"
extern const char* const kGitCommit;    // "fedtrack.git.commit"
extern const char* const kGitTag;       // "fedtrack.git.tag"
extern const char* const kDvcMd5;       // "fedtrack.dvc.md5"
extern const char* const kDvcPath;      // "fedtrack.dvc.path"
extern const char* const kDvcRepo;      // "fedtrack.dvc.repo"
extern const char* const kModelSha256;  // "fedtrack.model_sha256"
extern const char* const kModelKey;     // "fedtrack.model_key"
}  // namespace lineage_tag

struct Lineage {
  using Tags = std::vector<std::pair<std::string, std::string>>;

  std::string job_id;
  int round = 0;  // 0: not known (rounds count from 1)
  std::string md5;
  std::string path;
  std::string commit;
  std::string tag;
  std::string repo;
  std::string run_key;
  std::string run_id;
  std::string parent_run_id;  // the job's run, whose child the round run is
  std::string tracking_uri;
  std::string model_sha256;
  std::string aggregation;  // "secaggplus": the server saw only the masked sum

  // The run tags for every non-empty field that has one, in the table's
  // order (job_id, round, commit, tag, md5, path, repo, model_sha256).
  Tags to_run_tags() const;
  // Reads the fields from a run's (or a model version's) tags; a missing or
  // unreadable key leaves its field empty (round 0).
  static Lineage from_run_tags(const std::map<std::string, std::string>& tags);
  // A registry model version's lineage: its own tags, with each missing
  // field taken from the tags of the run it was made from.
  static Lineage from_model_version(const std::map<std::string, std::string>& version_tags,
                                    const std::map<std::string, std::string>& run_tags);

  // The trailer block ("key: value\n" lines) for every non-empty field that
  // has a trailer, in the table's order.
  std::string to_trailers() const;
  // Reads the trailers of a commit message (any "key: value" line whose key
  // is a lineage trailer; the last one wins). Unknown lines are ignored.
  static Lineage from_commit_message(const std::string& message);

  // True when the fields a promotion or a restore needs are present.
  bool has_commit() const { return !commit.empty() && !md5.empty(); }
};

}  // namespace fedtrack
