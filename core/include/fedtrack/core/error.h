// fedtrack::Error — the one error type of the project.
//
// Every failure that reaches a user is an Error carrying a code (what kind of
// failure) and a message that names the offending thing: the key and
// file:line of a bad job file, the client whose update was malformed, the
// path that could not be read. The CLI maps codes to exit statuses and prints
// only the message. Torch-free; safe to include anywhere.
#pragma once

#include <stdexcept>
#include <string>

namespace fedtrack {

enum class ErrorCode {
  kInvalidArgument,     // bad input from the user: job file, flag, value
  kNotFound,            // a file, key, revision or model that does not exist
  kAlreadyExists,
  kFailedPrecondition,  // the system is not in a state to do this
  kUnavailable,         // a service or peer could not be reached; retryable
  kCorruption,          // bytes that fail their own checks
  kPermissionDenied,
  kUnauthenticated,
  kCancelled,           // stopped by SIGINT / SIGTERM or a caller
  kInternal,            // a bug or a library failure we did not expect
};

// A short lower-case name, e.g. "invalid argument".
const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}

  ErrorCode code() const noexcept { return code_; }

  static Error invalid_argument(const std::string& m) { return {ErrorCode::kInvalidArgument, m}; }
  static Error not_found(const std::string& m) { return {ErrorCode::kNotFound, m}; }
  static Error failed_precondition(const std::string& m) { return {ErrorCode::kFailedPrecondition, m}; }
  static Error unavailable(const std::string& m) { return {ErrorCode::kUnavailable, m}; }
  static Error corruption(const std::string& m) { return {ErrorCode::kCorruption, m}; }
  static Error permission_denied(const std::string& m) { return {ErrorCode::kPermissionDenied, m}; }
  static Error cancelled(const std::string& m) { return {ErrorCode::kCancelled, m}; }
  static Error internal(const std::string& m) { return {ErrorCode::kInternal, m}; }

 private:
  ErrorCode code_;
};

}  // namespace fedtrack
