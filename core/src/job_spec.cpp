#include "fedtrack/core/job_spec.h"

namespace fedtrack {

std::string JobSpec::where(const std::string& key) const {
  auto it = sources.find(key);
  if (it == sources.end() || it->second.empty()) return "";
  return it->second + ": ";
}

}  // namespace fedtrack
