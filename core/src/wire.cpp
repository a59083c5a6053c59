#include "wire.h"

#include <cstring>

#include "byte_codec.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {
constexpr std::string_view kMagic = "FTMS";

void put_config(ByteWriter& w, const ConfigRecord& record) {
  w.put(static_cast<std::uint32_t>(record.size()));
  for (const auto& [key, value] : record) {
    w.put_bytes(key);
    w.put(static_cast<std::uint8_t>(value.index()));
    if (const auto* b = std::get_if<bool>(&value)) {
      w.put(static_cast<std::uint8_t>(*b ? 1 : 0));
    } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
      w.put(*i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      w.put(*d);
    } else {
      w.put_bytes(std::get<std::string>(value));
    }
  }
}

ConfigRecord read_config(ByteReader& r) {
  ConfigRecord out;
  const auto count = r.get<std::uint32_t>("entry count");
  if (count > kMaxHeaderEntries) {
    throw Error::corruption("message: " + std::to_string(count) + " header entries, over the limit of " +
                            std::to_string(kMaxHeaderEntries));
  }
  for (std::uint32_t n = 0; n < count; ++n) {
    std::string key(r.get_bytes("key"));
    const auto tag = r.get<std::uint8_t>("type tag");
    Scalar value;
    switch (tag) {
      case 0: {
        const auto b = r.get<std::uint8_t>("bool");
        if (b > 1) throw Error::corruption("message: bool value " + std::to_string(b) + " for '" + key + "'");
        value = b == 1;
        break;
      }
      case 1: value = r.get<std::int64_t>("int"); break;
      case 2: value = r.get<double>("double"); break;
      case 3: value = std::string(r.get_bytes("string")); break;
      default: throw Error::corruption("message: unknown type tag " + std::to_string(tag) + " for '" + key + "'");
    }
    if (!out.emplace(std::move(key), std::move(value)).second) throw Error::corruption("message: a key appears twice");
  }
  return out;
}

}  // namespace

const char* message_kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::kJoined: return "joined";
    case MessageKind::kFitTask: return "fit task";
    case MessageKind::kEvaluateTask: return "evaluate task";
    case MessageKind::kWait: return "wait";
    case MessageKind::kDone: return "done";
    case MessageKind::kFitResult: return "fit result";
    case MessageKind::kEvaluateResult: return "evaluate result";
    case MessageKind::kTaskFailed: return "task failed";
    case MessageKind::kSecAggTask: return "secure aggregation task";
    case MessageKind::kSecAggResult: return "secure aggregation result";
  }
  return "unknown";
}

std::string encode_config(const ConfigRecord& record) {
  ByteWriter w;
  put_config(w, record);
  return w.take();
}

ConfigRecord decode_config(std::string_view bytes) {
  ByteReader r(bytes, "message header");
  ConfigRecord out = read_config(r);
  r.expect_end();
  return out;
}

std::string encode_message_head(MessageKind kind, const ConfigRecord& header, std::uint64_t payload_size) {
  const std::string head = encode_config(header);
  ByteWriter w;
  w.append(kMagic);
  w.put(kWireVersion);
  w.put(static_cast<std::uint8_t>(kind));
  w.put_bytes(head);
  w.put(payload_size);
  return w.take();
}

std::string encode_message(const Message& message) {
  std::string out = encode_message_head(message.kind, message.header, message.payload.size());
  out += message.payload;
  return out;
}

namespace {

// Decodes kind and header into `m`; returns the payload, a view into `bytes`.
std::string_view decode_head(std::string_view bytes, Message& m) {
  ByteReader r(bytes, "message");
  if (r.take(kMagic.size(), "magic") != kMagic) throw Error::corruption("message: bad magic, not a fedtrack message");
  const auto version = r.get<std::uint16_t>("version");
  if (version != kWireVersion) {
    throw Error::invalid_argument("message: protocol version " + std::to_string(version) +
                                  " is not supported (this build speaks version " + std::to_string(kWireVersion) + ")");
  }
  const auto kind = r.get<std::uint8_t>("kind");
  if (kind < 1 || kind > 10) throw Error::invalid_argument("message: unknown kind " + std::to_string(kind));
  m.kind = static_cast<MessageKind>(kind);
  const auto header = r.get_bytes("header");
  if (header.size() > kMaxHeaderBytes) {
    throw Error::corruption("message: a header of " + std::to_string(header.size()) + " bytes, over the limit of " +
                            std::to_string(kMaxHeaderBytes));
  }
  m.header = decode_config(header);
  const auto payload_size = r.get<std::uint64_t>("payload length");
  const std::string_view payload = r.take(payload_size, "payload");
  r.expect_end();
  return payload;
}

}  // namespace

std::uint64_t message_head_size(std::string_view prefix) {
  ByteReader r(prefix, "message");
  if (r.take(kMagic.size(), "magic") != kMagic) throw Error::corruption("message: bad magic, not a fedtrack message");
  r.get<std::uint16_t>("version");
  r.get<std::uint8_t>("kind");
  const auto header = r.get<std::uint32_t>("header length");
  if (header > kMaxHeaderBytes) {
    throw Error::corruption("message: a header of " + std::to_string(header) + " bytes, over the limit of " +
                            std::to_string(kMaxHeaderBytes));
  }
  return kMessagePrefixBytes + header + sizeof(std::uint64_t);
}

Message decode_message_head(std::string_view head, std::uint64_t& payload_size) {
  if (head.size() < sizeof(std::uint64_t)) throw Error::corruption("message: a head shorter than its payload length");
  std::memcpy(&payload_size, head.data() + head.size() - sizeof(std::uint64_t), sizeof(std::uint64_t));
  // The same checks as decode_message, on the head with an empty payload.
  std::string probe(head.substr(0, head.size() - sizeof(std::uint64_t)));
  probe.append(sizeof(std::uint64_t), '\0');
  Message m;
  decode_head(probe, m);
  return m;
}

Message decode_message(std::string_view bytes) {
  Message m;
  m.payload = std::string(decode_head(bytes, m));
  return m;
}

Message decode_message(std::string&& bytes) {
  Message m;
  const std::size_t payload_at = static_cast<std::size_t>(decode_head(bytes, m).data() - bytes.data());
  bytes.erase(0, payload_at);  // the payload ends the message
  m.payload = std::move(bytes);
  return m;
}

}  // namespace fedtrack
