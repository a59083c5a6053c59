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

// Every file fedtrack reads is opened through these: anything but a regular
// file (a directory, a FIFO, a device, a socket) is refused without blocking
// on it (opened O_NONBLOCK, then fstat).

// Opens `path` for reading; returns a descriptor (O_CLOEXEC, blocking
// reads) that the caller closes. Error(kNotFound) missing,
// Error(kInvalidArgument) not a regular file ("<path> is not a regular file
// (a FIFO)"), Error(kPermissionDenied), Error(kUnavailable) otherwise.
// Callers reading fedtrack's own objects (DVC cache, model repository) turn
// kInvalidArgument into kCorruption.
int open_regular_file(const std::string& path);

// Error (as open_regular_file) unless `path` is a regular file that can be
// opened for reading; for paths handed to a library that would block on a
// FIFO (TLS certificates, SQLite files).
void check_regular_file(const std::string& path);

// The whole file, through open_regular_file (same errors).
std::string read_file(const std::string& path);

// "a directory", "a FIFO", "a socket", "a character device", "a block
// device", "a symbolic link", "a regular file" or "an unknown file type",
// for a stat st_mode.
const char* file_type_name(unsigned mode);

}  // namespace fedtrack
