#include "fedtrack/core/records.h"

#include <charconv>
#include <cmath>

#include "fedtrack/core/error.h"
#include "fedtrack/core/number_text.h"

namespace fedtrack {

std::string number_text(double d) {
  char buf[64];
  const double magnitude = std::fabs(d);
  std::to_chars_result r;
  if (!std::isfinite(d) || magnitude >= 1 || d == 0) {
    r = std::to_chars(buf, buf + sizeof buf, d);
  } else if (magnitude >= 1e-4) {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  } else {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  }
  return std::string(buf, r.ptr);
}

std::string scalar_to_string(const Scalar& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return number_text(d); }
    std::string operator()(const std::string& s) const { return s; }
  };
  return std::visit(Visitor{}, value);
}

namespace {
[[noreturn]] void wrong_type(const std::string& key, const char* expected, const Scalar& v) {
  throw Error::invalid_argument("config key '" + key + "': expected " + expected + ", got '" +
                                scalar_to_string(v) + "'");
}
}  // namespace

double config_double(const ConfigRecord& config, const std::string& key, double fallback) {
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (auto d = std::get_if<double>(&it->second)) return *d;
  if (auto i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  wrong_type(key, "a number", it->second);
}

std::int64_t config_int(const ConfigRecord& config, const std::string& key, std::int64_t fallback) {
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (auto i = std::get_if<std::int64_t>(&it->second)) return *i;
  wrong_type(key, "an integer", it->second);
}

bool config_bool(const ConfigRecord& config, const std::string& key, bool fallback) {
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (auto b = std::get_if<bool>(&it->second)) return *b;
  wrong_type(key, "true or false", it->second);
}

std::string config_string(const ConfigRecord& config, const std::string& key,
                          const std::string& fallback) {
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (auto s = std::get_if<std::string>(&it->second)) return *s;
  wrong_type(key, "a string", it->second);
}

}  // namespace fedtrack
