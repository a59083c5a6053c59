#include "net/protocol.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <type_traits>
#include <cstdio>
#include <cstdlib>

#include "fedtrack/core/compression.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"

namespace fedtrack::net {
namespace {

constexpr std::string_view kBearerPrefix = "Bearer ";
constexpr std::string_view kConfigPrefix = "config/";
constexpr std::string_view kMetricPrefix = "metric/";

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

std::string quoted(std::string_view key) { return "'" + truncate_utf8(to_valid_utf8(key.substr(0, 154)), 150) + "'"; }

// Typed reads of a header field; a present field of the wrong type is corruption.
class Fields {
 public:
  Fields(const ConfigRecord& header, std::string what) : header_(header), what_(std::move(what)) {}

  Error bad(std::string_view key, const std::string& why) const {
    return Error::corruption(what_ + quoted(key) + " " + why);
  }
  std::string text(const std::string& key, std::string fallback = "") const {
    const Scalar* v = find(key);
    if (!v) return fallback;
    if (const auto* s = std::get_if<std::string>(v)) return *s;
    throw bad(key, "must be a string");
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback = 0) const {
    const Scalar* v = find(key);
    if (!v) return fallback;
    if (const auto* i = std::get_if<std::int64_t>(v)) return *i;
    throw bad(key, "must be an integer");
  }
  double number(const std::string& key, double fallback = 0) const {
    const Scalar* v = find(key);
    if (!v) return fallback;
    if (const auto* d = std::get_if<double>(v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(v)) return static_cast<double>(*i);
    throw bad(key, "must be a number");
  }
  const Scalar* find(const std::string& key) const {
    auto it = header_.find(key);
    return it == header_.end() ? nullptr : &it->second;
  }

 private:
  const ConfigRecord& header_;
  std::string what_;
};

template <typename T, typename Parse>
std::vector<T> split_list(std::string_view text, const char* field, Parse parse) {
  std::vector<T> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item(text.substr(start, comma - start));
    char* end = nullptr;
    errno = 0;
    const T value = parse(item.c_str(), &end);
    // ERANGE: an overflow is refused; a double's underflow to a subnormal is a value
    const bool out_of_range = errno == ERANGE && (std::is_integral_v<T> || std::abs(value) > 1);
    if (item.empty() || end != item.c_str() + item.size() || out_of_range) {
      throw Error::corruption(std::string(field) + ": " + quoted(item) + " is not a number");
    }
    out.push_back(value);
    if (comma == text.size()) return out;
    start = comma + 1;
  }
}

std::string kind_error(const char* expected, MessageKind got) {
  return std::string("expected ") + expected + ", got a " + message_kind_name(got);
}

}  // namespace

std::string bearer(const std::string& token) { return std::string(kBearerPrefix) + token; }

std::optional<std::string> bearer_token(std::string_view authorization) {
  if (!starts_with(authorization, kBearerPrefix)) return std::nullopt;
  return std::string(authorization.substr(kBearerPrefix.size()));
}

std::string join_doubles(const std::vector<double>& values) {
  std::string out;
  char buf[40];
  for (double v : values) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out;
}

std::vector<double> split_doubles(std::string_view text, const char* field) {
  return split_list<double>(text, field, [](const char* s, char** end) { return std::strtod(s, end); });
}

std::string join_ints(const std::vector<std::int64_t>& values) {
  std::string out;
  for (auto v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

std::vector<std::int64_t> split_ints(std::string_view text, const char* field) {
  return split_list<std::int64_t>(text, field,
                                  [](const char* s, char** end) { return std::int64_t{std::strtoll(s, end, 10)}; });
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : "\x1f") + n;
  return out;
}

std::vector<std::string> split_names(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const std::size_t sep = std::min(text.find('\x1f', start), text.size());
    out.emplace_back(text.substr(start, sep - start));
    if (sep == text.size()) return out;
    start = sep + 1;
  }
}

// --- join ---------------------------------------------------------------------

std::string encode_joined(const Joined& j) {
  ConfigRecord header = {{"job_id", j.job_id},
                               {"job_name", j.job_name},
                               {"model", j.model},
                               {"format", j.format},
                               {"feature_shape", join_ints(j.feature_shape)},
                               {"num_classes", j.num_classes},
                               {"val_fraction", j.val_fraction},
                               {"scaling_mean", join_doubles(j.scaling_mean)},
                               {"scaling_stddev", join_doubles(j.scaling_stddev)},
                               {"classes", join_names(j.classes)},
                               {"label", j.label},
                               {"heartbeat_seconds", j.heartbeat_seconds},
                               {"max_message_mb", j.max_message_mb},
                               {"poll_seconds", j.poll_seconds},
                               {"client", j.client},
                               {"session", j.session},
                               {"data_seed", j.data_seed}};
  if (j.compressing()) {
    header["compression_uplink"] = j.compression_uplink;
    header["compression_downlink"] = j.compression_downlink;
    header["topk_fraction"] = j.topk_fraction;
    header["error_feedback"] = j.error_feedback;
    header["compression_seed"] = j.compression_seed;
  }
  if (j.secure_aggregation) header["secure_aggregation"] = true;
  return encode_message_head(MessageKind::kJoined, header, 0);
}

Joined decode_joined(std::string_view bytes) {
  const Message m = decode_message(bytes);
  if (m.kind != MessageKind::kJoined) throw Error::corruption("join answered: " + kind_error("joined", m.kind));
  const Fields f(m.header, "joined: ");
  Joined j;
  j.job_id = f.text("job_id");
  j.job_name = f.text("job_name");
  j.model = f.text("model");
  j.format = f.text("format");
  j.feature_shape = split_ints(f.text("feature_shape"), "feature_shape");
  j.num_classes = f.integer("num_classes");
  j.val_fraction = f.number("val_fraction", 0.1);
  j.scaling_mean = split_doubles(f.text("scaling_mean"), "scaling_mean");
  j.scaling_stddev = split_doubles(f.text("scaling_stddev"), "scaling_stddev");
  j.classes = split_names(f.text("classes"));
  j.label = f.text("label");
  j.heartbeat_seconds = f.number("heartbeat_seconds", 5);
  j.max_message_mb = f.integer("max_message_mb", std::int64_t{1} << 20);
  j.poll_seconds = f.number("poll_seconds", 5);
  j.client = f.text("client");
  j.session = f.text("session");
  j.data_seed = f.integer("data_seed");
  if (j.session.empty()) throw f.bad("session", "is missing");
  auto codec_named = [&](const char* key, bool topk) {
    const std::string name = f.text(key, "none");
    const auto codec = compression::codec_from_name(name);
    if (!codec || name == "raw" || (!topk && *codec == compression::Codec::kTopk)) {
      throw f.bad(key, std::string("names no codec this build reads (none, fp16, int8") + (topk ? ", topk)" : ")"));
    }
    return name;
  };
  j.compression_uplink = codec_named("compression_uplink", true);
  j.compression_downlink = codec_named("compression_downlink", false);
  j.topk_fraction = f.number("topk_fraction", 0.01);
  j.compression_seed = f.integer("compression_seed");
  if (const Scalar* v = f.find("error_feedback")) {
    const auto* b = std::get_if<bool>(v);
    if (!b) throw f.bad("error_feedback", "must be a boolean");
    j.error_feedback = *b;
  }
  if (!(j.topk_fraction > 0 && j.topk_fraction <= 1)) throw f.bad("topk_fraction", "must be in (0, 1]");
  if (const Scalar* v = f.find("secure_aggregation")) {
    const auto* b = std::get_if<bool>(v);
    if (!b) throw f.bad("secure_aggregation", "must be a boolean");
    j.secure_aggregation = *b;
  }
  return j;
}

// --- task ---------------------------------------------------------------------

std::string encode_task_head(const TaskHead& head, std::uint64_t payload_size) {
  ConfigRecord header = {{"job_id", head.job_id}};
  if (head.kind == MessageKind::kFitTask || head.kind == MessageKind::kEvaluateTask) {
    header["task_id"] = head.task_id;
    header["round"] = head.round;
    for (const auto& [k, v] : head.config) header[std::string(kConfigPrefix) + k] = v;
    if (!head.encoding.empty()) header["encoding"] = head.encoding;
  } else if (head.kind == MessageKind::kSecAggTask) {
    header["task_id"] = head.task_id;
    header["round"] = head.round;
    header["stage"] = head.stage;
  }
  return encode_message_head(head.kind, header, payload_size);
}

namespace {
TaskMessage task_from(Message m) {
  const bool task = m.kind == MessageKind::kFitTask || m.kind == MessageKind::kEvaluateTask;
  const bool stage = m.kind == MessageKind::kSecAggTask;
  if (!task && !stage && m.kind != MessageKind::kWait && m.kind != MessageKind::kDone) {
    throw Error::corruption(std::string("the server sent a ") + message_kind_name(m.kind) + " as a task");
  }
  const Fields f(m.header, std::string(message_kind_name(m.kind)) + ": ");
  TaskMessage out;
  out.head.kind = m.kind;
  out.head.job_id = f.text("job_id");
  if (task) {
    out.head.task_id = f.integer("task_id");
    out.head.round = f.integer("round");
    for (const auto& [k, v] : m.header) {
      if (starts_with(k, kConfigPrefix)) out.head.config[k.substr(kConfigPrefix.size())] = v;
    }
    out.head.encoding = f.text("encoding");
    if (!out.head.encoding.empty() && out.head.encoding != kCompressedModelEncoding) {
      throw f.bad("encoding", "is not a model encoding this build reads (" + std::string(kCompressedModelEncoding) + ")");
    }
    out.payload = std::move(m.payload);
  } else if (stage) {
    out.head.task_id = f.integer("task_id");
    out.head.round = f.integer("round");
    out.head.stage = f.integer("stage");
    if (out.head.stage < 1 || out.head.stage > kSecAggStages) throw f.bad("stage", "must be 1 to 4");
    out.payload = std::move(m.payload);
  }
  return out;
}
}  // namespace

TaskMessage decode_task(std::string_view bytes) { return task_from(decode_message(bytes)); }
TaskMessage decode_task(std::string&& bytes) { return task_from(decode_message(std::move(bytes))); }
TaskMessage decode_task_head(std::string_view head, std::uint64_t& payload_size) {
  return task_from(decode_message_head(head, payload_size));
}

// --- result -------------------------------------------------------------------

std::string encode_result_head(const Result& r) {
  ConfigRecord header = {{"job_id", r.job_id}, {"task_id", r.task_id}, {"round", r.round}};
  if (r.kind == MessageKind::kTaskFailed) {
    header["error"] = r.error;
  } else if (r.kind == MessageKind::kSecAggResult) {
    header["stage"] = r.stage;
    return encode_message({r.kind, header, r.payload});
  } else {
    header["num_examples"] = r.num_examples;
    if (r.train_seconds) header["train_seconds"] = *r.train_seconds;
    if (r.kind == MessageKind::kEvaluateResult) header["loss"] = r.loss;
    if (r.kind == MessageKind::kFitResult && !r.data_fingerprint.empty()) header["data_fingerprint"] = r.data_fingerprint;
    if (r.kind == MessageKind::kFitResult && !r.encoding.empty()) header["encoding"] = r.encoding;
    for (const auto& [k, v] : r.metrics) header[std::string(kMetricPrefix) + k] = v;
  }
  return encode_message_head(r.kind, header, r.kind == MessageKind::kFitResult ? r.payload.size() : 0);
}

std::string encode_result(const Result& r) {
  std::string out = encode_result_head(r);
  if (r.kind == MessageKind::kFitResult) out += r.payload;
  return out;
}

namespace {
// A closed message: job_id, task_id, round, stage and the reply bytes.
Result secagg_result_from(Message m) {
  const Fields f(m.header, std::string("a ") + message_kind_name(m.kind) + ": ");
  Result r;
  r.kind = m.kind;
  for (const auto& entry : m.header) {
    const std::string& key = entry.first;
    if (key == "job_id") r.job_id = f.text(key);
    else if (key == "task_id") r.task_id = f.integer(key);
    else if (key == "round") r.round = f.integer(key);
    else if (key == "stage") r.stage = f.integer(key);
    else throw f.bad(key, "is not a field of this message");
  }
  for (const char* required : {"job_id", "task_id", "round", "stage"}) {
    if (!m.header.count(required)) throw f.bad(required, "is missing");
  }
  if (r.stage < 1 || r.stage > kSecAggStages) throw f.bad("stage", "must be 1 to 4");
  r.payload = std::move(m.payload);
  return r;
}

Result result_from(Message m) {
  if (m.kind != MessageKind::kFitResult && m.kind != MessageKind::kEvaluateResult &&
      m.kind != MessageKind::kTaskFailed && m.kind != MessageKind::kSecAggResult) {
    throw Error::corruption(std::string("a ") + message_kind_name(m.kind) + " message is not a result");
  }
  if (m.kind == MessageKind::kSecAggResult) return secagg_result_from(std::move(m));
  const bool failed = m.kind == MessageKind::kTaskFailed;
  const bool fit = m.kind == MessageKind::kFitResult || failed;
  const bool evaluate = m.kind == MessageKind::kEvaluateResult || failed;
  const Fields f(m.header, std::string("a ") + message_kind_name(m.kind) + ": ");
  Result r;
  r.kind = m.kind;
  for (const auto& [key, value] : m.header) {
    if (key == "job_id") {
      r.job_id = f.text(key);
    } else if (key == "task_id") {
      r.task_id = f.integer(key);
    } else if (key == "round") {
      r.round = f.integer(key);
    } else if (key == "num_examples" && (fit || evaluate)) {
      r.num_examples = f.integer(key);
    } else if (key == "train_seconds" && (fit || evaluate)) {
      r.train_seconds = f.number(key);
    } else if (key == "loss" && evaluate) {
      r.loss = f.number(key);
    } else if (key == "data_fingerprint" && fit) {
      r.data_fingerprint = f.text(key);
      const std::string& text = r.data_fingerprint;
      const bool hex = !text.empty() && text.size() <= kMaxFingerprintBytes &&
                       std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
      if (!hex) throw f.bad(key, "must be 1 to " + std::to_string(kMaxFingerprintBytes) + " hex digits");
    } else if (key == "encoding" && m.kind == MessageKind::kFitResult) {
      r.encoding = f.text(key);
      if (r.encoding != kCompressedUpdateEncoding && r.encoding != kSecAggHeldEncoding) {
        throw f.bad(key, "is not an update encoding this build reads (" + std::string(kCompressedUpdateEncoding) +
                             ", " + kSecAggHeldEncoding + ")");
      }
    } else if (key == "error" && failed) {
      r.error = truncate_utf8(to_valid_utf8(f.text(key).substr(0, kMaxErrorTextBytes + 4)), kMaxErrorTextBytes);
    } else if (starts_with(key, kMetricPrefix) && (fit || evaluate)) {
      const std::string_view name = std::string_view(key).substr(kMetricPrefix.size());
      const bool ok = !name.empty() && name.size() <= kMaxMetricKeyBytes &&
                      std::all_of(name.begin(), name.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
                               c == '/' || c == ' ' || c == ':';
                      });
      if (!ok) {
        throw f.bad(key, "is not a metric name (1 to " + std::to_string(kMaxMetricKeyBytes) +
                             " characters of letters, digits, _ . - / : and space)");
      }
      r.metrics[std::string(name)] = f.number(key);
      if (r.metrics.size() > kMaxResultMetrics) {
        throw Error::corruption(std::string("a ") + message_kind_name(m.kind) + ": more than " +
                                std::to_string(kMaxResultMetrics) + " metrics");
      }
    } else {
      throw f.bad(key, "is not a field of this message");
    }
  }
  for (const char* required : {"job_id", "task_id", "round"}) {
    if (!m.header.count(required)) throw f.bad(required, "is missing");
  }
  if (!failed && !m.header.count("num_examples")) throw f.bad("num_examples", "is missing");
  if (m.kind == MessageKind::kEvaluateResult && !m.header.count("loss")) throw f.bad("loss", "is missing");
  if (failed && r.error.empty() && !m.header.count("error")) r.error = "(no reason given)";
  if (m.kind == MessageKind::kFitResult) r.payload = std::move(m.payload);
  return r;
}
}  // namespace

Result decode_result(std::string_view bytes) { return result_from(decode_message(bytes)); }
Result decode_result(std::string&& bytes) { return result_from(decode_message(std::move(bytes))); }
Result decode_result_head(std::string_view head, std::uint64_t& payload_size) {
  return result_from(decode_message_head(head, payload_size));
}

}  // namespace fedtrack::net
