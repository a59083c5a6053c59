// libFuzzer target: the model parameter decoder (FTPM, core/src/parameters.cpp),
// which reads every model a client uploads and every model a state file or
// message carries.
// Contract: see fuzz_contract.h. Round trip: what decodes, encoded again,
// is the input byte for byte (except the flags field, which version 1
// ignores), encoded_size() predicts the encoding's size, and the encoding
// decodes to the same tensors bit for bit.
#include <cstdint>
#include <cstring>

#include "fedtrack/core/parameters.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "parameters";
constexpr std::size_t kFlagsOffset = 6;  // "FTPM" | u16 version | u16 flags

bool bitwise_equal(const fedtrack::Parameters& a, const fedtrack::Parameters& b) {
  if (a.names != b.names || a.buffer_begin != b.buffer_begin || a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto& x = a.tensors[i];
    const auto& y = b.tensors[i];
    if (x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes()) return false;
    const std::size_t n = x.numel() * x.element_size();
    if (n != 0 && std::memcmp(x.data_ptr(), y.data_ptr(), n) != 0) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string_view bytes = fuzz::as_text(data, size);

  Parameters params;
  if (!fuzz::decodes(kTarget, [&] { params = decode_parameters(bytes); })) return 0;

  std::string encoded;
  fuzz::must_not_throw(kTarget, "encode_parameters(decoded)", [&] { encoded = encode_parameters(params); });
  fuzz::check(encoded_size(params) == encoded.size(), kTarget, "encoded_size() disagrees with encode_parameters()");
  std::string input(bytes);
  input[kFlagsOffset] = input[kFlagsOffset + 1] = 0;
  fuzz::check(encoded == input, kTarget, "encode(decode(x)) differs from x");

  Parameters again;
  fuzz::must_not_throw(kTarget, "decode_parameters(encode_parameters(p))", [&] { again = decode_parameters(encoded); });
  fuzz::check(bitwise_equal(params, again), kTarget, "decode(encode(p)) differs from p");
  return 0;
}
