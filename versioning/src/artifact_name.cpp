// The artifact name rule alone (no libgit2): the job file's reader checks
// versioning.artifact with it, also in the fuzz build.
#include <cctype>

#include "fedtrack/versioning/dvc_artifacts.h"

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

}  // namespace fedtrack
