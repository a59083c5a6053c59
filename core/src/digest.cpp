#include "fedtrack/core/digest.h"

#include <openssl/evp.h>

#include "fedtrack/core/error.h"

namespace fedtrack {

// OpenSSL's SHA-256 (SHA-NI / AVX2 where the CPU has them: several times
// Poco's portable one; a 100 MB model's digest is on every round's
// recording path).
struct Sha256::Engine {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Engine() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : engine_(std::make_unique<Engine>()) {
  if (!engine_->ctx || EVP_DigestInit_ex(engine_->ctx, EVP_sha256(), nullptr) != 1) {
    throw Error::internal("OpenSSL: cannot start a SHA-256 digest");
  }
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) { EVP_DigestUpdate(engine_->ctx, data, size); }

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(engine_->ctx, digest, &n);
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

}  // namespace fedtrack
