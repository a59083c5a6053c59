// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
// Torch-free. Only unsigned-byte payloads (type 0x08) are supported, which is
// what MNIST-family datasets use; anything else is Error(kInvalidArgument).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fedtrack {

struct IdxArray {
  std::vector<std::int64_t> dims;   // e.g. {60000, 28, 28}
  std::vector<std::uint8_t> data;   // row-major, product(dims) bytes
};

// Reads `path`; gzip is detected from the content, not the name.
// Errors: kNotFound (missing), kCorruption (bad magic, truncated, sizes that
// disagree), kInvalidArgument (unsupported element type).
IdxArray read_idx(const std::string& path);

// Parses IDX bytes already in memory; `name` is used in error messages.
IdxArray parse_idx(const std::string& bytes, const std::string& name);

// Finds `<dir>/<stem>` or `<dir>/<stem>.gz`; Error(kNotFound) names both.
// The IDX bytes of `array` (unsigned bytes, big-endian dimensions), what
// parse_idx reads back.
std::string encode_idx(const IdxArray& array);

std::string find_idx_file(const std::string& dir, const std::string& stem);

// Reads `path` as read_idx does (same checks and errors) without holding its
// payload: `on_dims` gets the dimensions, then `on_bytes` the row-major
// payload in chunks of at most 64 KiB, in order. Memory is one chunk, not
// the file.
void stream_idx(const std::string& path, const std::function<void(const std::vector<std::int64_t>&)>& on_dims,
                const std::function<void(const std::uint8_t*, std::size_t)>& on_bytes);

}  // namespace fedtrack
