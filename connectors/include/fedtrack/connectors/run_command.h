// `fedtrack run`: runs a job in the simulation runtime, prints one progress
// line per round to stderr, and ends stdout with the test-set accuracy (or,
// with --json, one JSON object on the last line). Torch-free header.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fedtrack {

struct RunArgs {
  std::string job_path;                 // empty = embedded defaults
  std::vector<std::string> overrides;   // "key.path=value"
  bool json = false;
  std::string model_out;                // write the final checkpoint here
};

// Returns the process exit status (see exit_status_for); never throws.
int run_command(const RunArgs& args, std::ostream& out, std::ostream& err);

// 0 ok; 1 internal; 2 invalid argument; 3 not found; 4 unavailable;
// 5 corruption; 6 permission denied / unauthenticated; 7 failed
// precondition / already exists; 130 cancelled (SIGINT / SIGTERM).
int exit_status_for(int error_code);

// Installs SIGINT / SIGTERM handlers that request a stop; a second signal
// kills the process the default way.
void install_stop_handlers();
bool stop_requested();

}  // namespace fedtrack
