#include "source_info.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#ifndef FEDTRACK_VERSION
#error "FEDTRACK_VERSION must be defined by the build (connectors/CMakeLists.txt)"
#endif

namespace fedtrack {

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "";
}

std::string fedtrack_version() { return FEDTRACK_VERSION; }

}  // namespace fedtrack
