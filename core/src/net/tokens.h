// The server's client tokens (`fedtrack server --tokens FILE`): which name a
// bearer token belongs to. read_tokens_file (network.h) parses the file.
// Torch-free.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fedtrack::net {

class TokenTable {
 public:
  explicit TokenTable(const std::vector<std::pair<std::string, std::string>>& names_and_tokens);

  // The name owning `token`, or nullptr. Compared with every token in
  // constant time per byte, so timing does not tell how much of one matched.
  const std::string* owner(const std::string& token) const;
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // (token, name)
};

}  // namespace fedtrack::net
