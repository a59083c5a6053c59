#include "fedtrack/versioning/gto_tags.h"

#include <git2.h>

#include <algorithm>
#include <regex>
#include <tuple>

#include "fedtrack/core/error.h"
#include "fedtrack/versioning/dvc_artifacts.h"
#include "git_push.h"
#include "git_util.h"
#include "repository_lock.h"

namespace fedtrack {
namespace {

std::tuple<int, int, int> semver(const std::string& v) {
  static const std::regex re(R"(v(\d+)\.(\d+)\.(\d+))");
  std::smatch m;
  if (!std::regex_match(v, m, re)) return {-1, -1, -1};
  return {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

std::vector<std::string> tags_matching(GitRepo& repo, const std::string& pattern) {
  git_strarray tags = {nullptr, 0};
  git_check(git_tag_list_match(&tags, pattern.c_str(), repo.get()), "git tag list");
  std::vector<std::string> out(tags.strings, tags.strings + tags.count);
  git_strarray_dispose(&tags);
  return out;
}

std::string create_tag(GitRepo& repo, const std::string& tag, const std::string& commit, const std::string& message,
                       const std::string& author) {
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) < 0) throw Error::invalid_argument("not a commit sha: " + commit);
  GitObject target;
  git_check(git_object_lookup(target.out(), repo.get(), &oid, GIT_OBJECT_COMMIT), "git commit " + commit);
  GitSignature sig = repo.signature(author);
  // Under the repository lock, like a round's commit: a killed promotion's
  // tag lock is then cleaned up by the next writer, and never a live one's.
  const std::string git_dir = git_repository_commondir(repo.get());
  const char* workdir = git_repository_workdir(repo.get());
  RepositoryLock lock(git_dir, std::chrono::seconds(10));
  recover_git_dir(git_dir, workdir ? workdir : "", lock);
  git_oid tag_oid;
  const int rc = git_tag_create(&tag_oid, repo.get(), tag.c_str(), target.get(), sig.get(), message.c_str(), 0);
  if (rc == GIT_EEXISTS) throw Error(ErrorCode::kAlreadyExists, "tag " + tag + " already exists");
  git_check(rc, "git tag " + tag);
  return tag;
}

}  // namespace

void check_gto_name(const std::string& name) {
  if (!is_dvc_artifact_name(name)) {
    throw Error::invalid_argument("name '" + name +
                                  "' is not a DVC artifact name: letters, digits, '-' and '_', starting and ending "
                                  "with a letter or digit, at most 100 characters");
  }
}

std::vector<GtoVersion> gto_versions(const std::string& repo_dir, const std::string& name) {
  check_gto_name(name);
  GitRepo repo(repo_dir);
  std::vector<GtoVersion> out;
  for (const auto& tag : tags_matching(repo, name + "@v*")) {
    const std::string version = tag.substr(name.size() + 1);
    if (std::get<0>(semver(version)) < 0) continue;  // deregistrations (…!) and others
    out.push_back({tag, version, repo.commit_of(tag)});
  }
  std::sort(out.begin(), out.end(), [](const GtoVersion& a, const GtoVersion& b) { return semver(a.version) < semver(b.version); });
  return out;
}

std::optional<GtoVersion> gto_version_at(const std::string& repo, const std::string& name, const std::string& commit) {
  for (const auto& v : gto_versions(repo, name)) {
    if (v.commit == commit) return v;
  }
  return std::nullopt;
}

std::string gto_next_version(const std::string& repo, const std::string& name) {
  const auto versions = gto_versions(repo, name);
  if (versions.empty()) return "v0.0.1";
  const auto [major, minor, patch] = semver(versions.back().version);
  return "v" + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch + 1);
}

std::string gto_register(const std::string& repo_dir, const std::string& name, const std::string& version,
                         const std::string& commit, const std::string& author) {
  check_gto_name(name);
  GitRepo repo(repo_dir);
  return create_tag(repo, name + "@" + version, commit, "Registering artifact " + name + " version " + version, author);
}

std::string gto_assign(const std::string& repo_dir, const std::string& name, const std::string& stage,
                       const std::string& version, const std::string& commit, const std::string& author) {
  check_gto_name(name);
  check_gto_name(stage);
  GitRepo repo(repo_dir);
  int counter = 0;
  for (const auto& tag : tags_matching(repo, name + "#*")) {
    const auto hash = tag.rfind('#');
    if (hash != std::string::npos && hash > name.size()) {
      try {
        counter = std::max(counter, std::stoi(tag.substr(hash + 1)));
      } catch (const std::exception&) {
      }
    }
  }
  const std::string tag = name + "#" + stage + "#" + std::to_string(counter + 1);
  return create_tag(repo, tag, commit, "Assigning stage " + stage + " to artifact " + name + " version " + version,
                    author);
}

GtoVersion gto_stage(const std::string& repo_dir, const std::string& name, const std::string& stage) {
  check_gto_name(name);
  GitRepo repo(repo_dir);
  int best = 0;
  std::string best_tag;
  for (const auto& tag : tags_matching(repo, name + "#" + stage + "#*")) {
    try {
      const int n = std::stoi(tag.substr(name.size() + stage.size() + 2));
      if (n > best) {
        best = n;
        best_tag = tag;
      }
    } catch (const std::exception&) {
    }
  }
  if (best_tag.empty()) {
    throw Error::not_found("model '" + name + "' was never assigned stage '" + stage + "' in " + repo_dir);
  }
  GtoVersion out{best_tag, "", repo.commit_of(best_tag)};
  if (auto v = gto_version_at(repo_dir, name, out.commit)) out.version = v->version;
  return out;
}

bool push_tags_if_remote(const std::string& repo_dir, const std::vector<std::string>& tags) {
  GitRepo repo(repo_dir);
  return push_tags_to_origin(repo.get(), tags);
}

}  // namespace fedtrack
