// Records exchanged between server, strategy and clients: configuration sent
// to clients and metrics returned by them (Flower's Config and Metrics).
// Plain values, torch-free; copy freely.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace fedtrack {

// A configuration value: what a server may send a client.
using Scalar = std::variant<bool, std::int64_t, double, std::string>;

// Ordered by key so that every rendering of a record is deterministic.
using ConfigRecord = std::map<std::string, Scalar>;

// Named numeric results (loss, accuracy, counts).
using Metrics = std::map<std::string, double>;

// Renders a scalar the way a user wrote it: true, 3, 0.05, sgd.
std::string scalar_to_string(const Scalar& value);

// Typed lookups with a default; a present value of the wrong type is an
// Error(kInvalidArgument) naming the key. Integers widen to double.
double config_double(const ConfigRecord& config, const std::string& key, double fallback);
std::int64_t config_int(const ConfigRecord& config, const std::string& key, std::int64_t fallback);
bool config_bool(const ConfigRecord& config, const std::string& key, bool fallback);
std::string config_string(const ConfigRecord& config, const std::string& key, const std::string& fallback);

}  // namespace fedtrack
