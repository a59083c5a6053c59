#include "source_info.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace fedtrack {

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "";
}

}  // namespace fedtrack
