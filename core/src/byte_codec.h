// ByteWriter / ByteReader — the little-endian, length-checked primitives
// behind fedtrack's binary encodings (model parameters "FTPM", resumable
// state "FTST", network messages "FTMS"). A reader never reads past its
// input: a short or lying length is Error(kCorruption) naming `context`
// and the field. Torch-free; the project targets little-endian hosts.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace fedtrack {

// Bytes as they arrive (a socket, a file): fills up to `size` bytes at
// `buffer` and returns how many; 0 when the input ended.
using ByteSource = std::function<std::size_t(char* buffer, std::size_t size)>;

class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    char buf[sizeof(T)];
    std::memcpy(buf, &value, sizeof(T));
    out_.append(buf, sizeof(T));
  }
  // u32 length + bytes.
  void put_bytes(std::string_view bytes);
  void append(std::string_view raw) { out_.append(raw); }
  std::string& str() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string context) : bytes_(bytes), context_(std::move(context)) {}

  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view take(std::uint64_t n, const char* what);
  // What put_bytes wrote.
  std::string_view get_bytes(const char* what) { return take(get<std::uint32_t>(what), what); }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  // Error(kCorruption) unless everything was read.
  void expect_end() const;

 private:
  void need(std::uint64_t n, const char* what) const;
  std::string_view bytes_;
  std::string context_;
  std::size_t pos_ = 0;
};

}  // namespace fedtrack
