#include "dvc_format.h"

#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"

namespace fedtrack {

const char* const kDvcGitignore = "/config.local\n/tmp\n/cache\n";
const char* const kDvcignore =
    "# Add patterns of files dvc should ignore, which could improve\n"
    "# the performance. Learn more at\n"
    "# https://dvc.org/doc/user-guide/dvcignore\n";

namespace {

// DVC writes paths plainly unless YAML needs quotes.
std::string yaml_scalar(const std::string& s) {
  YAML::Emitter e;
  e << s;
  return e.c_str();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

std::string render_dvc_file(const DvcOutput& out) {
  // YAML is UTF-8: any other byte would be written as U+FFFD, naming a file
  // that does not exist.
  if (!is_valid_utf8(out.path)) {
    throw Error::invalid_argument("'" + to_valid_utf8(out.path) + "': a DVC output path must be valid UTF-8");
  }
  // yaml-cpp writes a few code points (U+FFFE, U+FFFF in a quoted scalar) as
  // U+FFFD, and a trailing CR unquoted: a path is written only if it reads
  // back as itself in the line it is written in (followed by a line break).
  const std::string path = yaml_scalar(out.path);
  std::string back;
  try {
    back = YAML::Load("p: " + path + "\n")["p"].as<std::string>();
  } catch (const YAML::Exception&) {
  }
  if (back != out.path) {
    throw Error::invalid_argument("'" + out.path + "': this path cannot be written in a .dvc file");
  }
  std::string text = "outs:\n- md5: " + out.md5 + "\n  size: " + std::to_string(out.size) + "\n";
  if (!out.hash.empty()) text += "  hash: " + out.hash + "\n";
  text += "  path: " + path + "\n";
  return text;
}

DvcOutput parse_dvc_file(const std::string& text, const std::string& name) {
  try {
    const YAML::Node root = YAML::Load(text);
    const YAML::Node outs = root["outs"];
    if (!outs || !outs.IsSequence() || outs.size() == 0) {
      throw Error::corruption(name + ": no outs in .dvc file");
    }
    const YAML::Node o = outs[0];
    DvcOutput out;
    if (!o["md5"] || !o["path"]) throw Error::corruption(name + ": output without md5 or path");
    out.md5 = o["md5"].as<std::string>();
    out.path = o["path"].as<std::string>();
    if (o["size"]) out.size = o["size"].as<std::uint64_t>();
    if (o["hash"]) out.hash = o["hash"].as<std::string>();
    if (!is_valid_utf8(out.path)) throw Error::corruption(name + ": the output path is not valid UTF-8");
    if (out.md5.size() != 32 || out.md5.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw Error::corruption(name + ": '" + out.md5 + "' is not an MD5 (a directory output is not supported)");
    }
    return out;
  } catch (const YAML::Exception& e) {
    throw Error::corruption(name + ": not a .dvc file: " + e.what());
  }
}

std::string object_path(const std::string& root, const std::string& md5, bool legacy) {
  const std::string rel = md5.substr(0, 2) + "/" + md5.substr(2);
  return root + (legacy ? "/" : "/files/md5/") + rel;
}

std::string gitignore_with(const std::string& existing, const std::string& entry) {
  std::istringstream in(existing);
  for (std::string line; std::getline(in, line);) {
    if (trim(line) == entry) return existing;
  }
  std::string out = existing;
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + entry + "\n";
}

std::map<std::string, std::map<std::string, std::string>> parse_dvc_config(const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::istringstream in(text);
  std::string section;
  for (std::string raw; std::getline(in, raw);) {
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      if (section.size() >= 2 && (section.front() == '\'' || section.front() == '"') && section.back() == section.front()) {
        section = section.substr(1, section.size() - 2);
      }
      out[section];
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::string dvc_config_with_remote(const std::string& existing, const std::string& name, const std::string& url) {
  auto config = parse_dvc_config(existing);
  config["core"]["remote"] = name;
  config["remote \"" + name + "\""]["url"] = url;
  std::string out;
  auto emit = [&](const std::string& section) {
    // Quoted the way DVC writes ['remote "x"'], and whenever the bare form
    // would read back differently (edge blanks are trimmed, edge quotes taken off).
    const bool edge_quotes = section.size() >= 2 && (section.front() == '\'' || section.front() == '"') &&
                             section.back() == section.front();
    const bool quoted = section.find(' ') != std::string::npos || trim(section) != section || edge_quotes;
    out += "[" + (quoted ? "'" + section + "'" : section) + "]\n";
    for (const auto& [k, v] : config.at(section)) out += "    " + k + " = " + v + "\n";
  };
  emit("core");
  for (const auto& [section, values] : config) {
    if (section != "core" && !section.empty()) emit(section);
  }
  return out;
}

}  // namespace fedtrack
