#include "fedtrack/versioning/dvc_artifacts.h"

#include <git2.h>
#include <yaml-cpp/yaml.h>

#include <cctype>

#include "git_util.h"

namespace fedtrack {

bool is_dvc_artifact_name(const std::string& name) {
  if (name.empty() || name.size() > 100) return false;
  const auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

std::string artifact_name_for_job(const std::string& job_name) {
  if (is_dvc_artifact_name(job_name)) return job_name;
  std::string out;
  for (unsigned char c : job_name) {
    const bool keep = std::isalnum(c) || c == '_' || c == '-';
    const char next = keep ? static_cast<char>(c) : '-';
    if (next == '-' && !out.empty() && out.back() == '-') continue;
    out += next;
  }
  const auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (!out.empty() && !alnum(out.front())) out.erase(0, 1);
  if (out.size() > 100) out.resize(100);
  while (!out.empty() && !alnum(out.back())) out.pop_back();
  return out.empty() ? "model" : out;
}

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
