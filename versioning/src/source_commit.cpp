#include "fedtrack/versioning/source_commit.h"

#include <filesystem>

#include "git_util.h"

namespace fedtrack {

std::string checked_out_commit(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::absolute(path.empty() ? fs::path(".") : fs::path(path), ec);
  if (ec) return "";
  while (!dir.empty() && !fs::is_directory(dir, ec)) {  // a file, or a path not created yet
    if (dir == dir.parent_path()) return "";
    dir = dir.parent_path();
  }
  ensure_libgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, dir.c_str(), 0, nullptr) < 0) return "";
  git_oid oid;
  const int rc = git_reference_name_to_id(&oid, repo, "HEAD");
  git_repository_free(repo);
  return rc < 0 ? "" : oid_hex(oid);
}

}  // namespace fedtrack
