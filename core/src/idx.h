// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
// Torch-free. Only unsigned-byte payloads (type 0x08) are supported, which is
// what MNIST-family datasets use; anything else is Error(kInvalidArgument).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
// payload in chunks of at most 64 KiB, in order, product(dims) bytes in all
// unless an error is thrown. Memory is one chunk, not the file. The
// dimensions have been checked against the file's size before `on_dims`
// (a raw payload is exactly the bytes present; gzip inflates at most
// 1032-fold), so a buffer of product(dims) bytes is bounded by the file.
// An IDX file read front to back. The constructor reads and checks the
// header (errors as read_idx's) and checks the dimensions against the file's
// size (a raw payload is exactly the bytes present; gzip inflates at most
// 1032-fold), so a buffer of payload_bytes() is bounded by the file. Then
// read() takes the payload in pieces of any size, and expect_end() checks
// that nothing follows it.
class IdxReader {
 public:
  explicit IdxReader(const std::string& path);
  ~IdxReader();
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  const std::vector<std::int64_t>& dims() const { return dims_; }
  std::uint64_t payload_bytes() const { return payload_bytes_; }
  std::uint64_t remaining() const { return payload_bytes_ - consumed_; }
  // The next `n` payload bytes (n <= remaining()); kCorruption when the file
  // ends before them.
  void read(std::uint8_t* out, std::size_t n);
  // kCorruption when the file holds more (or fewer) bytes than the payload.
  void expect_end();

 private:
  struct Source;
  std::size_t read_some(char* buf, std::size_t size);

  std::string path_;
  std::unique_ptr<Source> source_;
  std::vector<std::int64_t> dims_;
  std::uint64_t payload_bytes_ = 0;
  std::uint64_t consumed_ = 0;
};

void stream_idx(const std::string& path, const std::function<void(const std::vector<std::int64_t>&)>& on_dims,
                const std::function<void(const std::uint8_t*, std::size_t)>& on_bytes);

}  // namespace fedtrack
