#include "net/tokens.h"

#include <map>
#include <sstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/network.h"

namespace fedtrack {

namespace net {

TokenTable::TokenTable(const std::vector<std::pair<std::string, std::string>>& names_and_tokens) {
  for (const auto& [name, token] : names_and_tokens) entries_.emplace_back(token, name);
}

const std::string* TokenTable::owner(const std::string& given) const {
  const std::string* name = nullptr;
  for (const auto& [token, owner] : entries_) {
    unsigned char diff = token.size() == given.size() ? 0 : 1;
    for (std::size_t i = 0; i < token.size(); ++i) {
      diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff == 0) name = &owner;
  }
  return name;
}

}  // namespace net

std::vector<std::pair<std::string, std::string>> read_tokens_file(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);  // a FIFO or a directory is an Error, never a hang
  } catch (const Error& e) {
    throw Error::invalid_argument("--tokens: cannot read " + path + " (" + e.what() + ")");
  }
  std::istringstream in(text);
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, int> names, tokens;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string name, token, extra;
    if (!(fields >> name)) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (!(fields >> token) || (fields >> extra)) throw Error::invalid_argument(where + "expected 'name token'");
    if (names.count(name)) throw Error::invalid_argument(where + "name '" + name + "' appears twice");
    if (tokens.count(token)) throw Error::invalid_argument(where + "this token is already given to another name");
    if (token.size() < 8) throw Error::invalid_argument(where + "token of '" + name + "' is shorter than 8 characters");
    names[name] = number;
    tokens[token] = number;
    out.emplace_back(name, token);
  }
  if (out.empty()) throw Error::invalid_argument("--tokens: " + path + " names no client");
  return out;
}

}  // namespace fedtrack
