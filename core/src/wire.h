// The messages `fedtrack server` and `fedtrack client` exchange as HTTP/1.1
// bodies. Every message:
//
//   "FTMS" | u16 version (1) | u8 kind | u32 header length | header |
//   u64 payload length | payload
//
// little-endian; the header is a ConfigRecord (u32 count, then per entry a
// u32-length key, a u8 type tag — 0 bool, 1 int64, 2 double, 3 string — and
// the value); the payload is a model in the FTPM encoding (parameters.h) or
// empty. decode_message() checks every length against the bytes present and
// the version before anything is used: Error(kInvalidArgument) for a
// version or kind this build does not speak, Error(kCorruption) for
// malformed bytes, a header over kMaxHeaderBytes or with more than
// kMaxHeaderEntries entries. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fedtrack/core/records.h"

namespace fedtrack {

inline constexpr std::uint16_t kWireVersion = 1;
inline constexpr std::size_t kMaxHeaderBytes = 16u << 20;  // a job header carries per-feature scaling as text
inline constexpr std::uint32_t kMaxHeaderEntries = 4096;

enum class MessageKind : std::uint8_t {
  kJoined = 1,          // server -> client: identity, session, the job's model and data format
  kFitTask = 2,         // server -> client: train from the payload model
  kEvaluateTask = 3,    // server -> client: evaluate the payload model
  kWait = 4,            // server -> client: nothing yet, ask again
  kDone = 5,            // server -> client: the job finished, exit
  kFitResult = 6,       // client -> server: updated model + num_examples + metrics
  kEvaluateResult = 7,  // client -> server: loss + num_examples + metrics
  kTaskFailed = 8,      // client -> server: the task raised; header "error"
  kSecAggTask = 9,      // server -> client: one SecAgg+ stage request (payload: its bytes)
  kSecAggResult = 10,   // client -> server: the stage's reply (payload: its bytes)
};

const char* message_kind_name(MessageKind kind);

struct Message {
  MessageKind kind = MessageKind::kWait;
  ConfigRecord header;
  std::string payload;
};

// Everything before the payload, for a sender that streams a shared payload
// after it without copying.
std::string encode_message_head(MessageKind kind, const ConfigRecord& header, std::uint64_t payload_size);
std::string encode_message(const Message& message);
Message decode_message(std::string_view bytes);
// The same, keeping the payload in `bytes`' own buffer (no copy of a model).
Message decode_message(std::string&& bytes);

// For a reader that streams a message's payload instead of holding the
// whole body: the head is the first kMessagePrefixBytes, then the header
// and the u64 payload length. message_head_size(prefix) says how many bytes
// the whole head takes (Error(kCorruption) for a bad magic or a header
// over kMaxHeaderBytes); decode_message_head(head, &payload_size) decodes it
// as decode_message would, the payload left to the caller.
inline constexpr std::size_t kMessagePrefixBytes = 4 + 2 + 1 + 4;
std::uint64_t message_head_size(std::string_view prefix);
Message decode_message_head(std::string_view head, std::uint64_t& payload_size);

std::string encode_config(const ConfigRecord& record);
ConfigRecord decode_config(std::string_view bytes);

}  // namespace fedtrack
