// Small file helpers with the project's durability rule: every file that
// matters is written to a temporary name, flushed and renamed, so a crash
// leaves either the old content or the new. Torch-free; thread-safe for
// distinct paths.
#pragma once

#include <string>
#include <string_view>

namespace fedtrack {

// Writes `bytes` to `path` through `<path>.tmp-<pid>-<n>` in the same folder,
// fsyncs it, renames it over `path`, and fsyncs the folder. Creates missing
// parent folders. Error(kPermissionDenied / kUnavailable) naming the path.
void write_file_atomically(const std::string& path, std::string_view bytes);

// The whole file. Error(kNotFound) if it cannot be opened.
std::string read_file(const std::string& path);

}  // namespace fedtrack
