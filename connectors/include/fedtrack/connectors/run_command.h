// `fedtrack run` (the simulation runtime) and `fedtrack server` / `fedtrack
// client` / `fedtrack partition` (the network runtime): each job prints one
// progress line per round to stderr and ends stdout with the test-set
// accuracy (or, with --json, one JSON object on the last line). Both job
// commands save a resume point after every round (server.state) and continue
// from it with --resume. Torch-free header.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace fedtrack {

struct RunArgs {
  std::string job_path;                 // empty = embedded defaults
  std::vector<std::string> overrides;   // "key.path=value"
  bool json = false;
  std::string model_out;                // write the final checkpoint here
  bool resume = false;                  // continue from the job's state file
  bool require_tracking = false;        // --require-tracking: tracking.required = true
};

struct ServerArgs : RunArgs {
  std::string listen = "0.0.0.0:8080";
  std::string tokens;
  std::string tls_cert;
  std::string tls_key;
};

struct ClientArgs {
  std::string server;
  std::string token;
  std::string data;
  std::string tls_ca;
  double give_up_after = 600;
  int threads = 0;
  std::int64_t max_message_mb = 2048;
};

struct PartitionArgs {
  std::string job_path;
  std::vector<std::string> overrides;
  std::string out;
};

// Each returns 0 and throws fedtrack::Error on failure; the CLI runs them
// through run_guarded (exit_status.h), which maps the error to the exit status.
int run_command(const RunArgs& args, std::ostream& out, std::ostream& err);
int server_command(const ServerArgs& args, std::ostream& out, std::ostream& err);
int client_command(const ClientArgs& args, std::ostream& out, std::ostream& err);
int partition_command(const PartitionArgs& args, std::ostream& out, std::ostream& err);

// Installs SIGINT / SIGTERM handlers that request a stop; a second signal
// kills the process the default way.
void install_stop_handlers();
bool stop_requested();

}  // namespace fedtrack
