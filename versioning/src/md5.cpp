#include "fedtrack/versioning/md5.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {

struct Md5::State {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(ctx); }
};

Md5::Md5() : state_(std::make_unique<State>()) {
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_md5(), nullptr) != 1) {
    throw Error::internal("OpenSSL: cannot start an MD5 digest");
  }
}

Md5::~Md5() = default;

void Md5::update(const void* data, std::size_t size) { EVP_DigestUpdate(state_->ctx, data, size); }

std::string Md5::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(state_->ctx, digest, &n);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

std::string md5_hex(std::string_view bytes) {
  Md5 m;
  m.update(bytes);
  return m.hex();
}

FileDigest md5_file(const std::string& path) {
  const int fd = open_regular_file(path);  // no FIFO or directory: an Error, never a hang
  Md5 m;
  FileDigest out;
  std::vector<char> block(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, block.data(), block.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw Error::unavailable("cannot read " + path + ": " + std::strerror(err));
    }
    m.update(block.data(), static_cast<std::size_t>(n));
    out.size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.md5 = m.hex();
  return out;
}

}  // namespace fedtrack
