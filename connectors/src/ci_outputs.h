// What `fedtrack promote` hands a CI pipeline, in the files the CI systems
// read. Private to connectors.
//
//   GitHub Actions  $GITHUB_OUTPUT        appended: `key=value` lines; a value
//                                         with a line break as a heredoc
//                                         `key<<DELIM` / value / `DELIM`,
//                                         DELIM a line the value never holds
//                   $GITHUB_STEP_SUMMARY  appended: Markdown
//   GitLab CI       dotenv report         written whole (temporary file +
//                                         rename): `FEDTRACK_KEY=value`, the
//                                         key upper-cased with every other
//                                         character `_`; dotenv has no
//                                         multi-line values, so a line
//                                         break in a value becomes a space
//
// Appending never truncates what earlier steps wrote. A file that cannot be
// written is Error(kUnavailable) naming the path and the reason. Plain
// values; thread-safe except for concurrent writers of one file.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fedtrack {

// Ordered outputs: set() replaces a key's value in place or appends it.
class CiOutputs {
 public:
  using Items = std::vector<std::pair<std::string, std::string>>;
  void set(const std::string& key, const std::string& value);
  const Items& items() const { return items_; }

 private:
  Items items_;
};

// The exact text appended to $GITHUB_OUTPUT.
std::string github_output_text(const CiOutputs& outputs);
// The exact dotenv report.
std::string dotenv_text(const CiOutputs& outputs);

void append_github_output(const std::string& path, const CiOutputs& outputs);
void append_step_summary(const std::string& path, const std::string& markdown);
void write_dotenv(const std::string& path, const CiOutputs& outputs);

}  // namespace fedtrack
