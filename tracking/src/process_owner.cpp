#include "process_owner.h"

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fedtrack {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// Field 22 of /proc/PID/stat (after the command name, which may hold spaces
// and parentheses, so counting starts after the last ')').
std::int64_t start_ticks(std::int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

}  // namespace

ProcessOwner this_process() {
  const std::int64_t pid = getpid();
  return {pid, host_name(), start_ticks(pid)};
}

bool owner_gone(const ProcessOwner& owner) {
  if (owner.pid <= 0) return true;  // never recorded: no process claims it
  if (owner.host != host_name()) return false;
  if (kill(static_cast<pid_t>(owner.pid), 0) != 0 && errno == ESRCH) return true;
  if (owner.start == 0) return false;  // alive, and nothing to tell a reused pid by
  const std::int64_t now = start_ticks(owner.pid);
  return now != 0 && now != owner.start;
}

}  // namespace fedtrack
