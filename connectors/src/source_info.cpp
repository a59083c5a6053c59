#include "source_info.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

// The first line of a small git file; "" when it is missing or not a
// regular file (a FIFO there must not hang the job).
std::string first_line(const fs::path& file) {
  std::istringstream in;
  try {
    in.str(read_file(file.string()));
  } catch (const Error&) {
    return "";
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

bool is_sha(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The git directory for a work tree root: ".git" itself, or where a ".git"
// file (worktrees, submodules) points.
fs::path git_dir(const fs::path& root) {
  const fs::path dot = root / ".git";
  if (fs::is_directory(dot)) return dot;
  const std::string line = first_line(dot);
  if (line.rfind("gitdir: ", 0) == 0) {
    fs::path target = line.substr(8);
    return target.is_absolute() ? target : root / target;
  }
  return {};
}

}  // namespace

std::string git_commit_of(const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::absolute(path.empty() ? fs::path(".") : fs::path(path), ec);
  if (ec) return "";
  if (!fs::is_directory(dir)) dir = dir.parent_path();
  for (; !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / ".git")) break;
    if (dir == dir.parent_path()) return "";
  }
  const fs::path git = git_dir(dir);
  if (git.empty()) return "";
  const std::string head = first_line(git / "HEAD");
  if (is_sha(head)) return head;  // detached
  if (head.rfind("ref: ", 0) != 0) return "";
  const std::string ref = head.substr(5);
  fs::path common = git;
  const std::string commondir = first_line(git / "commondir");
  if (!commondir.empty()) common = fs::path(commondir).is_absolute() ? fs::path(commondir) : git / commondir;
  for (const fs::path& base : {git, common}) {
    const std::string loose = first_line(base / ref);
    if (is_sha(loose)) return loose;
  }
  std::istringstream packed;
  try {
    packed.str(read_file((common / "packed-refs").string()));
  } catch (const Error&) {
  }
  for (std::string line; std::getline(packed, line);) {
    if (line.size() > 41 && line.compare(41, std::string::npos, ref) == 0 && is_sha(line.substr(0, 40))) {
      return line.substr(0, 40);
    }
  }
  return "";
}

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "";
}

}  // namespace fedtrack
