// The DVC 3 repository formats fedtrack writes and reads, byte-exact with
// what `dvc init` / `dvc add` write. Torch-free, pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace fedtrack {

// One output of a `.dvc` file.
struct DvcOutput {
  std::string md5;
  std::uint64_t size = 0;
  std::string hash;  // "md5" for DVC 3; "" for a legacy DVC 2 output
  std::string path;  // relative to the folder of the .dvc file
  bool legacy() const { return hash.empty(); }
};

// "outs:\n- md5: ...\n  size: ...\n  hash: md5\n  path: ...\n"
std::string render_dvc_file(const DvcOutput& out);

// Reads the first output of a .dvc file (yaml-cpp); `name` is used in errors.
// Error(kCorruption) for a file without a usable output.
DvcOutput parse_dvc_file(const std::string& text, const std::string& name);

// Where a cache or remote keeps an object: DVC 3 `files/md5/ab/cdef…`,
// legacy DVC 2 `ab/cdef…`, below `root`.
std::string object_path(const std::string& root, const std::string& md5, bool legacy);

// Contents of the files `dvc init` makes.
extern const char* const kDvcGitignore;  // .dvc/.gitignore
extern const char* const kDvcignore;     // .dvcignore

// `.gitignore` text with `entry` ("/global.pt") added unless present;
// keeps everything else, adds the missing final newline first.
std::string gitignore_with(const std::string& existing, const std::string& entry);

// A minimal reader for DVC's ConfigObj-style INI: section -> key -> value;
// sections like ['remote "storage"'] come back as `remote "storage"`.
std::map<std::string, std::map<std::string, std::string>> parse_dvc_config(const std::string& text);

// .dvc/config text with `url` as the default remote `name`, keeping other
// sections as they were.
std::string dvc_config_with_remote(const std::string& existing, const std::string& name, const std::string& url);

}  // namespace fedtrack
