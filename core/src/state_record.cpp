#include "fedtrack/core/state_record.h"

#include <sstream>

#include "byte_codec.h"
#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {
constexpr std::string_view kMagic = "FTST";
constexpr std::uint16_t kVersion = 1;
}  // namespace

std::string encode_state(const StateRecord& state) {
  ByteWriter w;
  w.append(kMagic);
  w.put(kVersion);
  w.put(static_cast<std::uint32_t>(state.size()));
  for (const auto& [key, value] : state) {
    w.put_bytes(key);
    w.put_bytes(value);
  }
  return w.take();
}

StateRecord decode_state(std::string_view bytes) {
  ByteReader r(bytes, "state record");
  if (r.take(kMagic.size(), "magic") != kMagic) throw Error::corruption("state record: bad magic");
  const auto version = r.get<std::uint16_t>("version");
  if (version != kVersion) {
    throw Error::corruption("state record: version " + std::to_string(version) + " is not supported (expected " +
                            std::to_string(kVersion) + ")");
  }
  const auto count = r.get<std::uint32_t>("count");
  StateRecord out;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string key(r.get_bytes("key"));
    std::string value(r.get_bytes("value"));
    out.emplace(std::move(key), std::move(value));
  }
  r.expect_end();
  return out;
}

void nest(StateRecord& out, const std::string& prefix, const StateRecord& inner) {
  for (const auto& [k, v] : inner) out[prefix + k] = v;
}

StateRecord unnest(const StateRecord& state, const std::string& prefix) {
  StateRecord out;
  for (auto it = state.lower_bound(prefix); it != state.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out[it->first.substr(prefix.size())] = it->second;
  }
  return out;
}

std::string encode_f64(double value) {
  ByteWriter w;
  w.put(value);
  return w.take();
}

double decode_f64(std::string_view bytes) {
  ByteReader r(bytes, "state record");
  const double v = r.get<double>("f64");
  r.expect_end();
  return v;
}

std::string encode_rng(const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  return s.str();
}

std::mt19937_64 decode_rng(std::string_view text) {
  std::istringstream s{std::string(text)};
  std::mt19937_64 rng;
  s >> rng;
  if (!s) throw Error::corruption("state record: unreadable RNG state");
  return rng;
}

const std::string& state_at(const StateRecord& state, const std::string& key) {
  auto it = state.find(key);
  if (it == state.end()) throw Error::corruption("state record: '" + key + "' is missing");
  return it->second;
}

}  // namespace fedtrack
