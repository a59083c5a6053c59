#include "fedtrack/versioning/dvc_artifacts.h"

#include <git2.h>
#include <yaml-cpp/yaml.h>

#include "git_util.h"

namespace fedtrack {

std::optional<std::string> declared_artifact(const std::string& repo, const std::string& rev, const std::string& path) {
  GitRepo git(repo, false);
  const std::string sha = git.commit_of(rev);
  git_oid oid;
  git_oid_fromstr(&oid, sha.c_str());
  GitCommit commit;
  git_check(git_commit_lookup(commit.out(), git.get(), &oid), "git commit " + sha);
  const auto text = git_blob_at(git.get(), commit.get(), "dvc.yaml");
  if (!text) return std::nullopt;
  try {
    const YAML::Node artifacts = YAML::Load(*text)["artifacts"];
    if (!artifacts || !artifacts.IsMap()) return std::nullopt;
    for (auto it = artifacts.begin(); it != artifacts.end(); ++it) {
      const YAML::Node p = it->second["path"];
      if (it->first.IsScalar() && p && p.IsScalar() && p.Scalar() == path) return it->first.Scalar();
    }
  } catch (const YAML::Exception&) {
  }
  return std::nullopt;
}

}  // namespace fedtrack
