#include "dvc_remote_config.h"

#include "dvc_format.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

std::string read_config_file(const fs::path& path) {
  try {
    return read_file(path.string());
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) throw;
    throw Error::corruption(std::string(e.what()) + ", in the model repository; move it away");
  }
}

void merge(DvcConfig& into, const DvcConfig& from) {
  for (const auto& [section, values] : from) {
    for (const auto& [k, v] : values) into[section][k] = v;
  }
}

std::string remote_section(const std::string& name) { return "remote \"" + name + "\""; }

DvcRemote remote_from(const std::string& name, const std::map<std::string, std::string>& section) {
  DvcRemote r;
  r.name = name;
  for (const auto& [k, v] : section) {
    if (k == "url") {
      r.url = v;
    } else {
      r.settings[k] = v;
    }
  }
  return r;
}

}  // namespace

std::string DvcRemote::folder(const fs::path& dvc_dir) const {
  std::string path = url;
  if (path.rfind("file://", 0) == 0) path = path.substr(7);
  if (path.find("://") != std::string::npos) {
    throw Error::invalid_argument(describe() + ": fedtrack supports folder and s3:// remotes, not " +
                                  path.substr(0, path.find("://") + 3));
  }
  fs::path p(path);
  if (p.is_relative()) p = dvc_dir / p;
  return fs::absolute(p).lexically_normal().string();
}

std::string DvcRemote::describe() const {
  return "DVC remote '" + name + "' (" + redact_uri(url) + ")";
}

DvcConfig read_dvc_config(const fs::path& dvc_dir, const std::optional<std::string>& committed) {
  DvcConfig config;
  if (committed) {
    config = parse_dvc_config(*committed);
  } else if (fs::exists(dvc_dir / "config")) {
    config = parse_dvc_config(read_config_file(dvc_dir / "config"));
  }
  if (fs::exists(dvc_dir / "config.local")) merge(config, parse_dvc_config(read_config_file(dvc_dir / "config.local")));
  return config;
}

std::optional<DvcRemote> default_dvc_remote(const DvcConfig& config) {
  const auto core = config.find("core");
  if (core == config.end()) return std::nullopt;
  const auto name = core->second.find("remote");
  if (name == core->second.end() || name->second.empty()) return std::nullopt;
  const auto section = config.find(remote_section(name->second));
  if (section == config.end() || !section->second.count("url") || section->second.at("url").empty()) {
    throw Error::invalid_argument(".dvc/config names the default remote '" + name->second +
                                  "' (core.remote) but has no url for it; set one with `dvc remote add -d " +
                                  name->second + " URL` or remove core.remote");
  }
  return remote_from(name->second, section->second);
}

DvcRemote dvc_remote_for_url(const DvcConfig& config, const std::string& url, const std::string& fallback_name) {
  // The default remote first, so a configured name wins over an alias.
  if (auto d = default_dvc_remote(config); d && d->url == url) return *d;
  for (const auto& [section, values] : config) {
    const std::string prefix = "remote \"";
    if (section.rfind(prefix, 0) != 0 || section.size() <= prefix.size() || section.back() != '"') continue;
    const auto u = values.find("url");
    if (u != values.end() && u->second == url) {
      return remote_from(section.substr(prefix.size(), section.size() - prefix.size() - 1), values);
    }
  }
  DvcRemote r;
  r.name = fallback_name;
  r.url = url;
  // Settings a user gave the fallback name (`dvc remote modify --local
  // fedtrack endpointurl ...` before the url was written) still apply.
  if (auto s = config.find(remote_section(fallback_name)); s != config.end()) {
    for (const auto& [k, v] : s->second) {
      if (k != "url") r.settings[k] = v;
    }
  }
  return r;
}

std::optional<DvcRemote> revision_default_remote(const std::filesystem::path& dvc_dir,
                                                 const std::string& committed_config) {
  DvcConfig config = parse_dvc_config(committed_config);
  for (const auto& [section, values] : read_dvc_config(dvc_dir)) {
    for (const auto& [k, v] : values) config[section][k] = v;
  }
  return default_dvc_remote(config);
}

}  // namespace fedtrack
