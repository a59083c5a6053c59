// The network protocol of `fedtrack server` and `fedtrack client`, defined
// once: the HTTP paths and headers, and one typed struct per message with
// exactly one encoder and one decoder, used by both ends.
//
//   POST /v1/join       (empty body)      -> Joined     (kJoined)
//   GET  /v1/task       long poll         -> TaskHead   (kFitTask / kEvaluateTask + model, kSecAggTask
//                                                        + stage request, kWait, kDone)
//   POST /v1/result     Result            -> 204        (kFitResult / kEvaluateResult / kSecAggResult /
//                                                        kTaskFailed)
//   POST /v1/heartbeat  (empty body)      -> 204
//
// Every request carries "Authorization: Bearer TOKEN" and
// "X-Fedtrack-Instance" (the client process); all but a join carry
// "X-Fedtrack-Session". Bodies are FTMS messages (wire.h); inside their
// ConfigRecord header a task's config travels under "config/", a result's
// metrics under "metric/", lists of numbers as comma-joined text (doubles
// printed exactly, %.17g) and class names joined by '\x1f'.
//
// Decoders read untrusted bytes: Error(kCorruption) for anything ill-formed
// (a wrong type, an unknown field where the message is closed, a bound
// exceeded), Error(kInvalidArgument) for a version or kind this build does
// not speak (decode_message). The server answers either with 400.
// Torch-free: a model travels as its FTPM bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fedtrack/core/records.h"
#include "wire.h"

namespace fedtrack::net {

// --- HTTP ---------------------------------------------------------------------
inline constexpr const char* kJoinPath = "/v1/join";
inline constexpr const char* kTaskPath = "/v1/task";
inline constexpr const char* kResultPath = "/v1/result";
inline constexpr const char* kHeartbeatPath = "/v1/heartbeat";
inline constexpr const char* kAuthorizationHeader = "Authorization";
inline constexpr const char* kSessionHeader = "X-Fedtrack-Session";
inline constexpr const char* kInstanceHeader = "X-Fedtrack-Instance";
inline constexpr const char* kMessageContentType = "application/x-fedtrack-message";

// "Bearer TOKEN", and back (nullopt unless the value has that form).
std::string bearer(const std::string& token);
std::optional<std::string> bearer_token(std::string_view authorization);

// --- lists inside a header ----------------------------------------------------
std::string join_doubles(const std::vector<double>& values);
std::vector<double> split_doubles(std::string_view text, const char* field);  // Error(kCorruption)
std::string join_ints(const std::vector<std::int64_t>& values);
std::vector<std::int64_t> split_ints(std::string_view text, const char* field);  // Error(kCorruption)
std::string join_names(const std::vector<std::string>& names);                   // '\x1f'-separated
std::vector<std::string> split_names(std::string_view text);

// --- join ---------------------------------------------------------------------
// The server's answer to a join: who the client is, its session, and the
// job's model and data format (the same for every site but the last three).
struct Joined {
  std::string job_id;
  std::string job_name;
  std::string model;
  std::string format;
  std::vector<std::int64_t> feature_shape;
  std::int64_t num_classes = 0;
  double val_fraction = 0.1;
  std::vector<double> scaling_mean;
  std::vector<double> scaling_stddev;
  std::vector<std::string> classes;
  std::string label;
  double heartbeat_seconds = 5;
  std::int64_t max_message_mb = std::int64_t{1} << 20;
  double poll_seconds = 5;
  // per site
  std::string client;
  std::string session;
  std::int64_t data_seed = 0;
  // The job's compression (docs/compression.md); sent only when on.
  // Unknown codec names or a fraction outside (0, 1] are corruption.
  std::string compression_uplink = "none";    // none | fp16 | int8 | topk
  std::string compression_downlink = "none";  // none | fp16 | int8
  double topk_fraction = 0.01;
  bool error_feedback = true;
  std::int64_t compression_seed = 0;          // seeds the client's int8 rounding
  // SecAgg+ (docs/privacy.md): a fit result then carries no model (the site
  // keeps it for the round's kSecAggTask stages). Sent only when on.
  bool secure_aggregation = false;
  bool compressing() const { return compression_uplink != "none" || compression_downlink != "none"; }
};
std::string encode_joined(const Joined& joined);  // a whole kJoined message
Joined decode_joined(std::string_view bytes);     // Error(kCorruption) for any other kind

// --- payload encodings --------------------------------------------------------
// A task's or a fit result's header field "encoding" says what its payload
// is; absent, it is a whole model in the FTPM encoding (parameters.h).
inline constexpr const char* kCompressedModelEncoding = "ftcu-model";    // task: the global model's values, FTCU
inline constexpr const char* kCompressedUpdateEncoding = "ftcu-update";  // fit result: trained - received, FTCU
// Fit result under SecAgg+: no payload, the site holds its model for the
// round's secure aggregation stages.
inline constexpr const char* kSecAggHeldEncoding = "secagg-held";

// --- task ---------------------------------------------------------------------
inline constexpr std::int64_t kSecAggStages = 4;  // secagg::Stage kSetup .. kUnmask
// A poll's answer. kFitTask / kEvaluateTask carry the task and a model
// payload; kWait and kDone only the job id.
struct TaskHead {
  MessageKind kind = MessageKind::kWait;
  std::string job_id;
  std::int64_t task_id = 0;
  std::int64_t round = 0;
  ConfigRecord config;  // the strategy's per-task config (Flower's FitIns.config)
  std::string encoding;  // "" (FTPM) or kCompressedModelEncoding
  std::int64_t stage = 0;  // kSecAggTask: the SecAgg+ stage (1..4) its payload asks for
};
// Everything before the payload: the server streams one shared model after it.
std::string encode_task_head(const TaskHead& head, std::uint64_t payload_size);
struct TaskMessage {
  TaskHead head;
  std::string payload;
};
TaskMessage decode_task(std::string_view bytes);  // Error(kCorruption) for a kind that is no poll answer
TaskMessage decode_task(std::string&& bytes);      // the same, the payload kept in `bytes`' buffer
// A poll answer's head alone (wire.h: decode_message_head), for a client
// that reads the model that follows straight into its tensors.
TaskMessage decode_task_head(std::string_view head, std::uint64_t& payload_size);

// --- result -------------------------------------------------------------------
// What a site sends back for a task. Bounds on what the server accepts:
inline constexpr std::size_t kMaxResultMetrics = 64;
inline constexpr std::size_t kMaxMetricKeyBytes = 128;  // MLflow allows 250 for client/<name>/<key>
inline constexpr std::size_t kMaxFingerprintBytes = 128;
inline constexpr std::size_t kMaxErrorTextBytes = 2000;

struct Result {
  MessageKind kind = MessageKind::kFitResult;  // or kEvaluateResult, kTaskFailed
  std::string job_id;
  std::int64_t task_id = 0;
  std::int64_t round = 0;
  std::int64_t num_examples = 0;         // fit, evaluate
  std::optional<double> train_seconds;   // fit, evaluate
  double loss = 0;                       // evaluate
  std::string data_fingerprint;          // fit: hex digits
  Metrics metrics;                       // fit, evaluate
  std::string error;                     // task failed
  std::string payload;                   // fit: the updated model (FTPM)
  std::string encoding;                  // fit: "" (FTPM model), kCompressedUpdateEncoding or kSecAggHeldEncoding
  std::int64_t stage = 0;                // secure aggregation result: the stage (1..4) it answers
};
// A kSecAggResult carries the stage's reply bytes as its payload (and only
// job_id, task_id, round, stage); the server's state machine checks them.
std::string encode_result(const Result& result);
// Everything before the payload (a fit result's model follows it on the wire).
std::string encode_result_head(const Result& result);
// Checks every key, its type and its size before anything is used, so
// nothing unbounded or ill-formed reaches a round's record (MLflow, journal,
// log). A task failure may still carry the fields of the result it replaces
// (older clients send them): they are checked the same way.
Result decode_result(std::string_view bytes);
// The same, keeping the payload in `bytes`' buffer (the server's request
// body): no copy of a model-sized payload.
Result decode_result(std::string&& bytes);
// The same for a result's head alone (wire.h: decode_message_head), for a
// server that reads the model that follows straight into tensors.
Result decode_result_head(std::string_view head, std::uint64_t& payload_size);

}  // namespace fedtrack::net
