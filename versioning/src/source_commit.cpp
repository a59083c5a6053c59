#include "fedtrack/versioning/source_commit.h"

#include <filesystem>

#include "fedtrack/core/text.h"
#include "git_util.h"

namespace fedtrack {

namespace {

// The git repository whose work tree contains `path`; null when none.
git_repository* open_containing(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::absolute(path.empty() ? fs::path(".") : fs::path(path), ec);
  if (ec) return nullptr;
  while (!dir.empty() && !fs::is_directory(dir, ec)) {  // a file, or a path not created yet
    if (dir == dir.parent_path()) return nullptr;
    dir = dir.parent_path();
  }
  ensure_libgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, dir.c_str(), 0, nullptr) < 0) return nullptr;
  return repo;
}

}  // namespace

std::string checked_out_commit(const std::string& path) {
  git_repository* repo = open_containing(path);
  if (!repo) return "";
  git_oid oid;
  const int rc = git_reference_name_to_id(&oid, repo, "HEAD");
  git_repository_free(repo);
  return rc < 0 ? "" : oid_hex(oid);
}

SourceRepository source_repository(const std::string& path) {
  SourceRepository out;
  git_repository* repo = open_containing(path);
  if (!repo) return out;
  git_reference* head = nullptr;
  if (git_repository_head(&head, repo) == 0) {
    if (git_reference_is_branch(head)) out.branch = git_reference_shorthand(head);
    git_reference_free(head);
  }
  git_remote* origin = nullptr;
  if (git_remote_lookup(&origin, repo, "origin") == 0) {
    if (const char* url = git_remote_url(origin)) out.repo_url = to_valid_utf8(redact_uri(url));
    git_remote_free(origin);
  }
  git_repository_free(repo);
  return out;
}

}  // namespace fedtrack
