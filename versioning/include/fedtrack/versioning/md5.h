// MD5 as DVC uses it: plain MD5 of the bytes, lower-case hex. Streaming
// (OpenSSL EVP); not thread-safe, one object per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fedtrack {

class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::string hex();  // the object is spent afterwards

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string md5_hex(std::string_view bytes);

struct FileDigest {
  std::string md5;
  std::uint64_t size = 0;
};

// Streams the file in 1 MiB blocks. Error(kNotFound) if it cannot be read.
FileDigest md5_file(const std::string& path);

}  // namespace fedtrack
