#include "fedtrack/core/digest.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

namespace fedtrack {

struct Sha256::Engine {
  Poco::SHA2Engine sha{Poco::SHA2Engine::SHA_256};
};

Sha256::Sha256() : engine_(std::make_unique<Engine>()) {}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) { engine_->sha.update(data, size); }

std::string Sha256::hex() { return Poco::DigestEngine::digestToHex(engine_->sha.digest()); }

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

}  // namespace fedtrack
