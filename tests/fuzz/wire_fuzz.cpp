// libFuzzer target: the network message decoder (FTMS, core/src/wire.cpp),
// which reads every request body a client or server receives, and the
// protocol's typed decoders on top of it (core/src/net/protocol.h): the
// server's decode_result, the client's decode_joined and decode_task.
// Contract: see fuzz_contract.h. Round trip: a decoded message, encoded
// again, decodes to the same message (compared through its encoding, so a
// NaN in the header compares bit for bit).
#include <cstdint>

#include "net/protocol.h"
#include "wire.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "wire";

template <typename Decode, typename Encode>
void typed_round_trip(const char* step, std::string_view bytes, Decode decode, Encode encode) {
  using Value = decltype(decode(bytes));
  Value value;
  if (!fedtrack::fuzz::decodes(kTarget, [&] { value = decode(bytes); })) return;
  const std::string encoded = encode(value);
  Value again;
  fedtrack::fuzz::must_not_throw(kTarget, step, [&] { again = decode(encoded); });
  fedtrack::fuzz::check(encode(again) == encoded, kTarget, std::string(step) + " differs from the decoded message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string_view bytes = fuzz::as_text(data, size);

  Message message;
  if (fuzz::decodes(kTarget, [&] { message = decode_message(bytes); })) {
    const std::string encoded = encode_message(message);
    Message again;
    fuzz::must_not_throw(kTarget, "decode_message(encode_message(m))", [&] { again = decode_message(encoded); });
    fuzz::check(again.kind == message.kind && again.payload == message.payload &&
                    encode_message(again) == encoded,
                kTarget, "decode(encode(m)) differs from m");
    fuzz::check(encode_message_head(message.kind, message.header, message.payload.size()) + message.payload == encoded,
                kTarget, "encode_message_head + payload differs from encode_message");
  }

  // The typed messages: what decodes re-encodes to bytes that decode to the
  // same message (compared through a second encoding).
  typed_round_trip("decode_result(encode_result(r))", bytes,
                   [](std::string_view b) { return net::decode_result(b); }, net::encode_result);
  typed_round_trip("decode_joined(encode_joined(j))", bytes, net::decode_joined, net::encode_joined);
  typed_round_trip("decode_task(encode_task_head(t) + payload)", bytes,
                   [](std::string_view b) { return net::decode_task(b); },
                   [](const net::TaskMessage& t) { return net::encode_task_head(t.head, t.payload.size()) + t.payload; });

  // The header record on its own (the same bytes, read as a ConfigRecord).
  ConfigRecord header;
  if (fuzz::decodes(kTarget, [&] { header = decode_config(bytes); })) {
    const std::string encoded = encode_config(header);
    fuzz::check(encoded == bytes || header.size() > 1, kTarget,
                "a header of at most one entry decodes but does not re-encode to the same bytes");
    ConfigRecord again;
    fuzz::must_not_throw(kTarget, "decode_config(encode_config(h))", [&] { again = decode_config(encoded); });
    fuzz::check(encode_config(again) == encoded, kTarget, "decode_config(encode_config(h)) differs from h");
  }
  return 0;
}
