// `fedtrack runs` and `fedtrack sync`: reading and sending the local
// tracking journal. Torch-free.
#pragma once

#include <iosfwd>
#include <string>

namespace fedtrack {

struct RunsArgs {
  std::string journal = ".fedtrack/journal.sqlite";
  bool json = false;
};

struct SyncArgs {
  std::string journal = ".fedtrack/journal.sqlite";
  std::string tracking_uri;  // empty = MLFLOW_TRACKING_URI
};

// Lists the journal's jobs and their rounds, with metrics and where each
// stands with MLflow (run id, or pending writes). Returns the exit status.
int runs_command(const RunsArgs& args, std::ostream& out, std::ostream& err);

// Sends every pending write to the server, in order, exactly once. Exit 0
// when nothing is left pending; 4 when the server could not be reached; 6
// when it refused the credentials; 2 for writes it refused as invalid.
int sync_command(const SyncArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fedtrack
