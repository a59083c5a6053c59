// The CLI's one error edge: every `fedtrack` subcommand runs through
// run_guarded, which maps fedtrack::ErrorCode to the exit statuses of
// README.md ("Exit statuses") and prints one line per failure. Torch-free.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

#include "fedtrack/core/error.h"

namespace fedtrack {

// The one exit table (README.md, "Exit statuses"):
//   0 success; 1 internal; 2 invalid argument; 3 not found; 4 unavailable;
//   5 corruption; 6 permission denied / unauthenticated; 7 failed
//   precondition / already exists; 130 cancelled (SIGINT / SIGTERM).
int exit_status_for(ErrorCode code);

// Runs `command` (which returns its exit status) and turns whatever it
// throws into a status: a fedtrack::Error by exit_status_for, any other
// exception (std::filesystem_error, a JSON parse error, anything unknown)
// into 1. Prints exactly one line `<prefix><message>` to `err` for a thrown
// failure, with every URL's secrets redacted and ill-formed UTF-8 replaced.
// Never throws.
//
// Test seam: with FEDTRACK_TEST_THROW=std (or =unknown) in the environment,
// `command` is replaced by one that throws a std::runtime_error (or an int),
// so the test suite can prove that such a failure exits 1 with one line.
int run_guarded(std::ostream& err, const std::function<int()>& command, const std::string& prefix = "fedtrack: ");

}  // namespace fedtrack
