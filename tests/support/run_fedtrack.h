// Runs the real `fedtrack` executable as a user would, through the shell, and
// collects its exit status and output. Shared by the integration test
// binaries; each wraps it with its own folder layout and environment.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "fedtrack/core/files.h"

namespace fedtrack::testing {

struct Outcome {
  int status = -1;  // the exit status; -1 when killed by a signal
  std::string out;
  std::string err;
};

// `cd CWD && PREFIX EXE ARGS >OUT 2>ERR`; PREFIX may set the environment
// (`env -u X Y=1`) or bound the run (`timeout -s KILL 60`).
inline Outcome run_fedtrack(const std::string& exe, const std::string& cwd, const std::string& prefix,
                            const std::string& args, const std::string& out, const std::string& err) {
  const std::string cmd = "cd " + cwd + " && " + prefix + " " + exe + " " + args + " >" + out + " 2>" + err;
  const int raw = std::system(cmd.c_str());
  Outcome o;
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = read_file(out);
  o.err = read_file(err);
  return o;
}

}  // namespace fedtrack::testing
