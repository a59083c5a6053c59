#include "ci_outputs.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {
namespace {

bool multi_line(const std::string& value) { return value.find_first_of("\r\n") != std::string::npos; }

// A heredoc delimiter that no line of `value` equals (GitHub ends the value
// at the first line that is the delimiter); deterministic.
std::string delimiter_for(const std::string& value) {
  const std::string base = "FEDTRACK_EOF";
  std::string delimiter = base;
  for (int n = 1; value.find(delimiter) != std::string::npos; ++n) delimiter = base + "_" + std::to_string(n);
  return delimiter;
}

void append(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::app | std::ios::binary);
  if (f) f << text;
  if (f) f.flush();
  if (!f) {
    const int err = errno;
    throw Error::unavailable("cannot append to " + path + (err ? std::string(": ") + std::strerror(err) : ""));
  }
}

}  // namespace

void CiOutputs::set(const std::string& key, const std::string& value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = value;
      return;
    }
  }
  items_.emplace_back(key, value);
}

std::string github_output_text(const CiOutputs& outputs) {
  std::string text;
  for (const auto& [k, v] : outputs.items()) {
    if (multi_line(v)) {
      const std::string delimiter = delimiter_for(v);
      text += k + "<<" + delimiter + "\n" + v + "\n" + delimiter + "\n";
    } else {
      text += k + "=" + v + "\n";
    }
  }
  return text;
}

std::string dotenv_text(const CiOutputs& outputs) {
  std::string text;
  for (const auto& [k, v] : outputs.items()) {
    std::string key = "FEDTRACK_";
    for (char c : k) key += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
    std::string value = v;
    for (char& c : value) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    text += key + "=" + value + "\n";
  }
  return text;
}

void append_github_output(const std::string& path, const CiOutputs& outputs) {
  append(path, github_output_text(outputs));
}

void append_step_summary(const std::string& path, const std::string& markdown) { append(path, markdown); }

void write_dotenv(const std::string& path, const CiOutputs& outputs) {
  write_file_atomically(path, dotenv_text(outputs));
}

}  // namespace fedtrack
