// Names of the model artifacts a model repository declares in dvc.yaml
// (`artifacts:`, type model) — the names `dvc artifacts get REPO NAME`,
// `dvc.api.artifacts_show(NAME)` and GTO's tags (NAME@vX.Y.Z, NAME#STAGE#N)
// resolve. Torch-free; libgit2 + yaml-cpp. Thread-safe.
#pragma once

#include <optional>
#include <string>

namespace fedtrack {

// DVC's artifact name rule (dvc.repo.artifacts.check_name_format, i.e. GTO's
// name_re `[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?`) without '/': letters,
// digits, '-' and '_', starting and ending with a letter or digit, at most
// 100 bytes. ('/' is left out: a name `fedtrack/x` would read as one of
// fedtrack's round tags, and MLflow's `models:/NAME@alias` URIs split on it.)
bool is_dvc_artifact_name(const std::string& name);

// The artifact name of a job named `job_name` (versioning.artifact unset):
// the job name when it is one; else its bytes outside [A-Za-z0-9_-] as '-',
// runs of '-' as one, cut to a letter or digit at both ends ("model" when
// nothing is left).
std::string artifact_name_for_job(const std::string& job_name);

// The name of the artifact that dvc.yaml at revision `rev` of the
// repository folder `repo` declares for `path` (e.g. models/global.pt), or
// nullopt when the revision has no dvc.yaml or it declares no artifact with
// that path. A repository written before fedtrack named artifacts after the
// job answers `global` (the model file's stem). Error(kNotFound) for an
// unknown repository or revision.
std::optional<std::string> declared_artifact(const std::string& repo, const std::string& rev, const std::string& path);

}  // namespace fedtrack
