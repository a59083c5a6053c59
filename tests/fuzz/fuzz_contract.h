// The contract every libFuzzer target in tests/fuzz checks.
//
// A decoder given any bytes either returns a value or throws fedtrack::Error.
// Anything else is a finding: another exception type (it would end a job as
// "internal error" or abort a CLI command), a crash, a leak, undefined
// behaviour (ASan + UBSan catch those), an input that takes longer than
// libFuzzer's -timeout, or an encoder whose output does not decode back to
// what it encoded. A violation prints "CONTRACT VIOLATION in <target>: ..."
// and aborts, which libFuzzer reports as a crash and saves the input.
#pragma once

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#include "fedtrack/core/error.h"

namespace fedtrack::fuzz {

[[noreturn]] inline void violation(const char* target, const std::string& what) {
  std::fprintf(stderr, "CONTRACT VIOLATION in %s: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// The dynamic type of the exception being handled, demangled.
inline std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "(unknown)";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type->name(), nullptr, nullptr, &status),
                                              std::free);
  return status == 0 && name ? name.get() : type->name();
}

// Runs `decode()`. True when it returned, false when it threw fedtrack::Error;
// any other exception is a contract violation naming its type and message.
template <typename Decode>
bool decodes(const char* target, Decode&& decode) {
  try {
    decode();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    violation(target, "threw " + current_exception_type() + " (not fedtrack::Error): " + e.what());
  } catch (...) {
    violation(target, "threw " + current_exception_type() + " (not fedtrack::Error)");
  }
}

// Runs `f()`, which must not throw at all (e.g. decoding what an encoder
// just produced).
template <typename F>
void must_not_throw(const char* target, const char* step, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    violation(target, std::string(step) + " threw " + current_exception_type() + ": " + e.what());
  } catch (...) {
    violation(target, std::string(step) + " threw " + current_exception_type());
  }
}

inline void check(bool ok, const char* target, const std::string& what) {
  if (!ok) violation(target, what);
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace fedtrack::fuzz
