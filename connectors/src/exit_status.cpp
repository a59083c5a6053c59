#include "fedtrack/connectors/exit_status.h"

#include <cstdlib>
#include <cstring>
#include <ostream>
#include <stdexcept>

#include "fedtrack/core/text.h"

namespace fedtrack {

int exit_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 2;
    case ErrorCode::kNotFound: return 3;
    case ErrorCode::kUnavailable: return 4;
    case ErrorCode::kCorruption: return 5;
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kUnauthenticated: return 6;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAlreadyExists: return 7;
    case ErrorCode::kCancelled: return 130;
    case ErrorCode::kInternal: return 1;
  }
  return 1;
}

namespace {

void print_line(std::ostream& err, const std::string& prefix, const std::string& message) {
  std::string line = to_valid_utf8(redact_secrets(message));
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';  // one line, whatever a library put in its message
  }
  err << prefix << line << std::endl;
}

void test_seam() {
  const char* what = std::getenv("FEDTRACK_TEST_THROW");
  if (what == nullptr) return;
  if (std::strcmp(what, "std") == 0) {
    throw std::runtime_error("FEDTRACK_TEST_THROW: a std::runtime_error from inside the command");
  }
  if (std::strcmp(what, "unknown") == 0) throw 42;
}

}  // namespace

int run_guarded(std::ostream& err, const std::function<int()>& command, const std::string& prefix) {
  try {
    test_seam();
    return command();
  } catch (const Error& e) {
    print_line(err, prefix, e.what());
    return exit_status_for(e.code());
  } catch (const std::exception& e) {
    print_line(err, prefix, std::string("internal error: ") + e.what());
    return 1;
  } catch (...) {
    print_line(err, prefix, "internal error: an unknown exception");
    return 1;
  }
}

}  // namespace fedtrack
