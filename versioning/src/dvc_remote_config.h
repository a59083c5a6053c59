// Which DVC remote a model repository pushes to and restores from, read the
// way `dvc push` reads it: `.dvc/config`, then `.dvc/config.local` on top
// (key by key), `[core] remote = NAME` naming the default remote and
// `['remote "NAME"']` holding its `url` and settings (endpointurl, region,
// profile, access_key_id, ...). Torch-free, pure apart from reading the two
// files.
//
// Not read (DVC does): the global and system configs (~/.config/dvc/config,
// /etc/xdg/dvc/config); a remote named only there is not found.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace fedtrack {

using DvcConfig = std::map<std::string, std::map<std::string, std::string>>;

struct DvcRemote {
  std::string name;                              // the section's name; "" when none
  std::string url;                               // as written: s3://bucket/prefix, /abs, rel (to .dvc/), file://...
  std::map<std::string, std::string> settings;   // every other key of the section (config.local on top)
  bool is_s3() const { return url.rfind("s3://", 0) == 0; }
  // The folder of a local remote, absolute (a relative url is relative to
  // `dvc_dir`, as DVC resolves it). Error(kInvalidArgument) for a URL
  // scheme other than file:// or s3://.
  std::string folder(const std::filesystem::path& dvc_dir) const;
  // "DVC remote 'name' (url)" for messages; the url without credentials.
  std::string describe() const;
};

// `.dvc/config` (`committed` when given: the text at a revision, else the
// file) with `.dvc/config.local` merged on top, key by key.
// Error(kCorruption) when a file is not a regular file.
DvcConfig read_dvc_config(const std::filesystem::path& dvc_dir, const std::optional<std::string>& committed = {});

// The default remote (`[core] remote`), or nullopt when none is named.
// Error(kInvalidArgument) naming the file when core.remote names a section
// that does not exist or has no url (what `dvc push` also refuses).
std::optional<DvcRemote> default_dvc_remote(const DvcConfig& config);

// The remote configured for `url` (versioning.remote): the section whose
// url is `url` when there is one (its settings apply), else `fallback_name`
// with no settings.
DvcRemote dvc_remote_for_url(const DvcConfig& config, const std::string& url, const std::string& fallback_name);

// The default remote a revision's objects are read from: its committed
// .dvc/config text, with the work tree's .dvc/config and config.local
// (under `dvc_dir`) on top, key by key; nullopt when none is named.
std::optional<DvcRemote> revision_default_remote(const std::filesystem::path& dvc_dir,
                                                 const std::string& committed_config);

}  // namespace fedtrack
