#include "byte_codec.h"

#include <limits>

#include "fedtrack/core/error.h"

namespace fedtrack {

void ByteWriter::put_bytes(std::string_view bytes) {
  if (bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw Error::invalid_argument("encoding: a field of " + std::to_string(bytes.size()) + " bytes is too long");
  }
  put(static_cast<std::uint32_t>(bytes.size()));
  out_.append(bytes);
}

std::string_view ByteReader::take(std::uint64_t n, const char* what) {
  need(n, what);
  auto view = bytes_.substr(pos_, n);
  pos_ += n;
  return view;
}

void ByteReader::expect_end() const {
  if (remaining() != 0) {
    throw Error::corruption(context_ + ": " + std::to_string(remaining()) + " trailing bytes");
  }
}

void ByteReader::need(std::uint64_t n, const char* what) const {
  if (n > remaining()) {
    throw Error::corruption(context_ + ": truncated " + what + " (need " + std::to_string(n) + " bytes, " +
                            std::to_string(remaining()) + " left)");
  }
}

}  // namespace fedtrack
