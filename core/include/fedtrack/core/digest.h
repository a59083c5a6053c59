// SHA-256, incremental, torch-free. Used for data fingerprints and model
// digests. Not thread-safe; one object per stream.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace fedtrack {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // Lower-case hex digest; the object is spent afterwards.
  std::string hex();

 private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace fedtrack
