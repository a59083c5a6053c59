#include "fedtrack/tracking/mlflow_client.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"
#include "tracking_payload.h"

namespace fedtrack {
namespace {

using json = nlohmann::json;

// --- JSON <-> entities ---------------------------------------------------------

json metric_json(const Metric& m) {
  json j = {{"key", json_text(m.key)}, {"value", encode_metric_value(m.value)}, {"timestamp", m.timestamp}, {"step", m.step}};
  if (!m.dataset_name.empty()) j["dataset_name"] = json_text(m.dataset_name);
  if (!m.dataset_digest.empty()) j["dataset_digest"] = json_text(m.dataset_digest);
  return j;
}

json pairs_json(const std::vector<KeyValue>& kvs) {
  json out = json::array();
  for (const auto& kv : kvs) out.push_back({{"key", json_text(kv.key)}, {"value", json_text(kv.value)}});
  return out;
}

std::int64_t as_int(const json& j, const char* key) {
  if (!j.contains(key)) return 0;
  const auto& v = j.at(key);
  if (v.is_number()) return v.get<std::int64_t>();
  if (v.is_string()) return std::strtoll(v.get<std::string>().c_str(), nullptr, 10);
  return 0;
}

std::string as_string(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return "";
  const auto& v = j.at(key);
  return v.is_string() ? v.get<std::string>() : dump_json(v);
}

RunInfo parse_run_info(const json& j) {
  RunInfo info;
  info.run_id = as_string(j, "run_id");
  if (info.run_id.empty()) info.run_id = as_string(j, "run_uuid");
  info.experiment_id = as_string(j, "experiment_id");
  info.run_name = as_string(j, "run_name");
  info.status = as_string(j, "status");
  info.start_time = as_int(j, "start_time");
  info.end_time = as_int(j, "end_time");
  info.artifact_uri = as_string(j, "artifact_uri");
  info.lifecycle_stage = as_string(j, "lifecycle_stage");
  return info;
}

MlflowRun parse_run(const json& j) {
  MlflowRun run;
  run.info = parse_run_info(j.at("info"));
  if (j.contains("data")) {
    const json& d = j.at("data");
    for (const auto& m : d.value("metrics", json::array())) run.metrics[m.at("key")] = decode_metric_value(m.at("value"));
    for (const auto& p : d.value("params", json::array())) run.params[p.at("key")] = as_string(p, "value");
    for (const auto& t : d.value("tags", json::array())) run.tags[t.at("key")] = as_string(t, "value");
  }
  return run;
}

ModelVersion parse_model_version(const json& j) {
  ModelVersion mv;
  mv.name = as_string(j, "name");
  mv.version = as_string(j, "version");
  mv.source = as_string(j, "source");
  mv.run_id = as_string(j, "run_id");
  mv.status = as_string(j, "status");
  for (const auto& t : j.value("tags", json::array())) mv.tags[t.at("key")] = as_string(t, "value");
  for (const auto& a : j.value("aliases", json::array())) mv.aliases.push_back(a.get<std::string>());
  return mv;
}

RegisteredModel parse_registered_model(const json& j) {
  RegisteredModel rm;
  rm.name = as_string(j, "name");
  for (const auto& a : j.value("aliases", json::array())) rm.aliases[as_string(a, "alias")] = as_string(a, "version");
  for (const auto& t : j.value("tags", json::array())) rm.tags[t.at("key")] = as_string(t, "value");
  return rm;
}

// --- errors --------------------------------------------------------------------

ErrorCode code_for(long status, const std::string& mlflow_code) {
  if (mlflow_code == "RESOURCE_DOES_NOT_EXIST" || mlflow_code == "NOT_FOUND") return ErrorCode::kNotFound;
  if (mlflow_code == "RESOURCE_ALREADY_EXISTS") return ErrorCode::kAlreadyExists;
  if (mlflow_code == "INVALID_PARAMETER_VALUE" || mlflow_code == "BAD_REQUEST" ||
      mlflow_code == "INVALID_STATE") {
    return ErrorCode::kInvalidArgument;
  }
  if (status == 401 || mlflow_code == "UNAUTHENTICATED") return ErrorCode::kUnauthenticated;
  if (status == 403 || mlflow_code == "PERMISSION_DENIED") return ErrorCode::kPermissionDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 500 || status == 408 || status == 429) return ErrorCode::kUnavailable;
  if (status >= 400) return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

// What a request carried, for a 401's message: which credentials, never
// their values.
std::string describe_credentials(const MlflowConfig& config) {
  if (!config.token.empty()) return "sent a bearer token (MLFLOW_TRACKING_TOKEN is set); check that it is valid";
  if (!config.username.empty() || !config.password.empty()) {
    return "sent user '" + to_valid_utf8(config.username) + "' " +
           (config.password.empty() ? "with an empty password (MLFLOW_TRACKING_PASSWORD is not set)"
                                    : "with a password (MLFLOW_TRACKING_PASSWORD is set)") +
           "; check the user name and password";
  }
  return "sent none (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD and MLFLOW_TRACKING_TOKEN are unset): set "
         "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN";
}

Error server_error(const HttpRequest& request, const HttpResponse& response, const std::string& credentials_sent) {
  std::string mlflow_code, message;
  try {
    const json body = json::parse(response.body);
    mlflow_code = as_string(body, "error_code");
    message = as_string(body, "message");
  } catch (const std::exception&) {
    message = response.body.substr(0, 300);
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  }
  std::string text = "MLflow " + (mlflow_code.empty() ? "HTTP " + std::to_string(response.status) : mlflow_code) +
                     ": " + (message.empty() ? "(no message)" : message) + " (" + request.method + " " +
                     request.url + ")";
  text = redact_secrets(json_text(text));
  if (response.status == 401) text += "; the server refused the credentials: " + credentials_sent;
  return Error(code_for(response.status, mlflow_code), text);
}

bool retryable(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (*end != '\0' || d < 0) throw Error::invalid_argument(std::string(name) + ": expected a non-negative number, got '" + v + "'");
  return d;
}

std::string env_string(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool env_bool(const char* name) {
  std::string v = env_string(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true" || v == "1" || v == "yes";
}

std::string base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned n = static_cast<unsigned char>(in[i]) << 16;
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::size_t json_size(const json& j) { return dump_json(j).size() + 1; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Takes "user:password@" out of `uri`; returns it (percent-decoded) in
// `user` and `password`.
std::string without_userinfo(const std::string& uri, std::string& user, std::string& password) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  const std::size_t start = scheme + 3;
  std::size_t end = uri.find_first_of("/?#", start);
  if (end == std::string::npos) end = uri.size();
  const auto at = uri.rfind('@', end - 1);
  if (at == std::string::npos || at < start || end == start) return uri;
  const std::string info = uri.substr(start, at - start);
  const auto colon = info.find(':');
  user = percent_decode(info.substr(0, colon));
  password = colon == std::string::npos ? "" : percent_decode(info.substr(colon + 1));
  return uri.substr(0, start) + uri.substr(at + 1);
}

// An MLflow search filter value in quotes.
std::string quoted(const std::string& value) {
  return value.find('\'') == std::string::npos ? "'" + value + "'" : "\"" + value + "\"";
}

}  // namespace

std::string MlflowConfig::resolve_tracking_uri(const std::string& tracking_uri) {
  return tracking_uri.empty() ? env_string("MLFLOW_TRACKING_URI") : tracking_uri;
}

std::string MlflowConfig::resolve_experiment(const std::string& experiment) {
  if (!experiment.empty()) return experiment;
  const std::string name = env_string("MLFLOW_EXPERIMENT_NAME");
  return name.empty() ? "Default" : name;
}

ExperimentChoice ExperimentChoice::resolve(const std::string& job_experiment) {
  ExperimentChoice c;
  const std::string env_name = env_string("MLFLOW_EXPERIMENT_NAME");
  const std::string env_id = env_string("MLFLOW_EXPERIMENT_ID");
  if (!job_experiment.empty()) {
    c.name = job_experiment;
    c.origin = "tracking.experiment";
  } else if (!env_name.empty()) {
    c.name = env_name;
    c.id = env_id;
    c.origin = "MLFLOW_EXPERIMENT_NAME";
  } else if (!env_id.empty()) {
    c.id = env_id;
    c.by_id = true;
    c.origin = "MLFLOW_EXPERIMENT_ID";
  } else {
    c.name = "Default";
    c.origin = "the default";
  }
  return c;
}

MlflowConfig MlflowConfig::from_environment(const std::string& tracking_uri) {
  MlflowConfig c;
  c.tracking_uri = resolve_tracking_uri(tracking_uri);
  while (!c.tracking_uri.empty() && c.tracking_uri.back() == '/') c.tracking_uri.pop_back();
  c.token = env_string("MLFLOW_TRACKING_TOKEN");
  c.username = env_string("MLFLOW_TRACKING_USERNAME");
  c.password = env_string("MLFLOW_TRACKING_PASSWORD");
  c.insecure_tls = env_bool("MLFLOW_TRACKING_INSECURE_TLS");
  c.server_cert_path = env_string("MLFLOW_TRACKING_SERVER_CERT_PATH");
  c.max_retries = static_cast<int>(env_number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", c.max_retries));
  c.backoff_factor = env_number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", c.backoff_factor);
  c.backoff_jitter = env_number("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", c.backoff_jitter);
  c.timeout_seconds = env_number("MLFLOW_HTTP_REQUEST_TIMEOUT", c.timeout_seconds);
  return c;
}

std::vector<LogBatch> split_log_batch(const LogBatch& all, const BatchLimits& limits) {
  std::vector<LogBatch> out;
  LogBatch current;
  std::size_t bytes = 64;  // {"run_id": ..., the arrays' brackets}
  auto flush = [&] {
    if (current.size() > 0) out.push_back(std::move(current));
    current = LogBatch{};
    bytes = 64;
  };
  auto room = [&](std::size_t entity_bytes) {
    return current.size() < limits.max_entities && bytes + entity_bytes <= limits.max_bytes;
  };
  for (const auto& p : all.params) {
    const std::size_t b = json_size({{"key", p.key}, {"value", p.value}});
    if (!(room(b) && current.params.size() < limits.max_params)) flush();
    current.params.push_back(p);
    bytes += b;
  }
  for (const auto& t : all.tags) {
    const std::size_t b = json_size({{"key", t.key}, {"value", t.value}});
    if (!(room(b) && current.tags.size() < limits.max_tags)) flush();
    current.tags.push_back(t);
    bytes += b;
  }
  for (const auto& m : all.metrics) {
    const std::size_t b = json_size(metric_json(m));
    if (!(room(b) && current.metrics.size() < limits.max_metrics)) flush();
    current.metrics.push_back(m);
    bytes += b;
  }
  flush();
  return out;
}

std::string sanitize_key(const std::string& key) {
  std::string cleaned;
  for (unsigned char c : key) {
    const bool ok = std::isalnum(c) || c == '_' || c == '/' || c == '.' || c == '-' || c == ' ' || c == ':';
    cleaned += ok ? static_cast<char>(c) : '_';
  }
  // Path segments: no empty ones (leading, trailing or doubled '/'), none
  // that are "." or "..", so the name does not resolve to another one.
  std::string out;
  std::size_t start = 0;
  while (start <= cleaned.size()) {
    auto slash = cleaned.find('/', start);
    if (slash == std::string::npos) slash = cleaned.size();
    std::string segment = cleaned.substr(start, slash - start);
    if (segment == "." || segment == "..") segment = std::string(segment.size(), '_');
    if (!segment.empty()) out += (out.empty() ? "" : "/") + segment;
    start = slash + 1;
  }
  if (out.empty()) out = "_";
  if (out.size() > 250) out.resize(250);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

MlflowClient::MlflowClient(MlflowConfig config, std::unique_ptr<HttpTransport> transport,
                           std::function<void(double)> sleep)
    : config_(std::move(config)), transport_(std::move(transport)), sleep_(std::move(sleep)) {
  if (config_.tracking_uri.rfind("http://", 0) != 0 && config_.tracking_uri.rfind("https://", 0) != 0) {
    throw Error::invalid_argument("tracking URI '" + config_.tracking_uri +
                                  "' is not an http:// or https:// MLflow server");
  }
  while (config_.tracking_uri.back() == '/') config_.tracking_uri.pop_back();
  std::string user, password;
  config_.tracking_uri = without_userinfo(config_.tracking_uri, user, password);
  if ((!user.empty() || !password.empty()) && config_.token.empty() && config_.username.empty() &&
      config_.password.empty()) {
    config_.username = user;
    config_.password = password;
  }
  if (!transport_) transport_ = make_curl_transport({config_.insecure_tls, config_.server_cert_path});
  if (!sleep_) {
    sleep_ = [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); };
  }
}

std::string MlflowClient::send_with_retries(HttpRequest request, bool retry) {
  if (!config_.token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + config_.token);
  } else if (!config_.username.empty() || !config_.password.empty()) {
    request.headers.emplace_back("Authorization", "Basic " + base64(config_.username + ":" + config_.password));
  }
  request.headers.emplace_back("User-Agent", "fedtrack");
  if (!retry) request.idempotent = false;
  for (int attempt = 0;; ++attempt) {
    request.timeout_seconds = config_.timeout_seconds;
    if (deadline_) {
      const double left = std::chrono::duration<double>(*deadline_ - Clock::now()).count();
      if (left <= 0.001) throw Error::unavailable(request.method + " " + request.url + ": tracking deadline passed");
      request.timeout_seconds = std::min(request.timeout_seconds, left);
    }
    double retry_after = 0;
    std::optional<Error> failure;
    ++requests_;
    try {
      HttpResponse response = transport_->send(request);
      if (response.status >= 200 && response.status < 300) return std::move(response.body);
      if (!retryable(response.status)) throw server_error(request, response, describe_credentials(config_));
      failure = server_error(request, response, describe_credentials(config_));
      auto it = response.headers.find("retry-after");
      if (it != response.headers.end()) retry_after = std::strtod(it->second.c_str(), nullptr);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable) throw;
      failure = Error(e.code(), redact_secrets(e.what()));
    }
    if (!retry) throw *failure;
    backoff(attempt, retry_after, *failure);
  }
}

void MlflowClient::backoff(int attempt, double retry_after, const Error& failure) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  if (attempt >= config_.max_retries) throw failure;
  std::uniform_real_distribution<double> jitter(0, config_.backoff_jitter);
  double wait = std::min(120.0, config_.backoff_factor * std::pow(2.0, attempt)) + jitter(rng);
  wait = std::max(wait, retry_after);
  if (deadline_ && Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(wait)) >= *deadline_) {
    throw failure;
  }
  sleep_(wait);
}

std::string MlflowClient::call(const std::string& method, const std::string& path, const std::string& body,
                               bool retry) {
  HttpRequest request;
  request.method = method;
  request.url = config_.tracking_uri + "/api/2.0/" + path;
  if (method == "GET") {
    const json query = body.empty() ? json::object() : json::parse(body);
    std::string qs;
    for (const auto& [k, v] : query.items()) {
      const std::string value = v.is_string() ? v.get<std::string>() : dump_json(v);
      qs += (qs.empty() ? "?" : "&") + url_encode(k) + "=" + url_encode(value);
    }
    request.url += qs;
  } else {
    request.body = body.empty() ? "{}" : body;
    request.headers.emplace_back("Content-Type", "application/json");
  }
  return send_with_retries(std::move(request), retry);
}

// --- experiments ---------------------------------------------------------------

std::optional<Experiment> MlflowClient::get_experiment_by_name(const std::string& name) {
  try {
    const json r = json::parse(call("GET", "mlflow/experiments/get-by-name", dump_json({{"experiment_name", json_text(name)}})));
    const json& e = r.at("experiment");
    return Experiment{as_string(e, "experiment_id"), as_string(e, "name"), as_string(e, "artifact_location"),
                      as_string(e, "lifecycle_stage")};
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return std::nullopt;
    throw;
  }
}

std::optional<Experiment> MlflowClient::get_experiment(const std::string& experiment_id) {
  try {
    const json r = json::parse(call("GET", "mlflow/experiments/get", dump_json({{"experiment_id", json_text(experiment_id)}})));
    const json& e = r.at("experiment");
    return Experiment{as_string(e, "experiment_id"), as_string(e, "name"), as_string(e, "artifact_location"),
                      as_string(e, "lifecycle_stage")};
  } catch (const Error& e) {
    // MLflow answers an id that is not a number with INVALID_PARAMETER_VALUE.
    if (e.code() == ErrorCode::kNotFound || e.code() == ErrorCode::kInvalidArgument) return std::nullopt;
    throw;
  }
}

std::string MlflowClient::create_experiment(const std::string& name) {
  const json r = json::parse(call("POST", "mlflow/experiments/create", dump_json({{"name", json_text(name)}})));
  return as_string(r, "experiment_id");
}

std::string MlflowClient::get_or_create_experiment(const std::string& name) {
  if (auto e = get_experiment_by_name(name)) {
    if (e->lifecycle_stage == "deleted") {
      throw Error::failed_precondition("MLflow experiment '" + name +
                                       "' is deleted; restore it or choose another name");
    }
    return e->experiment_id;
  }
  try {
    return create_experiment(name);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kAlreadyExists) throw;
    return get_experiment_by_name(name).value().experiment_id;  // created concurrently
  }
}

// --- runs ----------------------------------------------------------------------

RunInfo MlflowClient::create_run(const std::string& experiment_id, const std::string& run_name,
                                 std::int64_t start_time_ms, const std::vector<KeyValue>& tags,
                                 const std::string& user) {
  json body = {{"experiment_id", json_text(experiment_id)}, {"start_time", start_time_ms}, {"tags", pairs_json(tags)}};
  if (!run_name.empty()) body["run_name"] = json_text(run_name);
  if (!user.empty()) body["user_id"] = json_text(user);
  const json r = json::parse(call("POST", "mlflow/runs/create", dump_json(body), /*retry=*/false));
  return parse_run_info(r.at("run").at("info"));
}

std::optional<CreatedRun> MlflowClient::find_unique_run(const std::string& experiment_id, const KeyValue& unique_tag,
                                                        const std::string& keep) {
  std::vector<MlflowRun> found =
      search_runs({experiment_id}, "tags.`" + unique_tag.key + "` = " + quoted(json_text(unique_tag.value)));
  if (found.empty()) return std::nullopt;
  const bool keep_found = std::any_of(found.begin(), found.end(), [&](const MlflowRun& r) { return r.info.run_id == keep; });
  if (!keep.empty() && !keep_found) {
    CreatedRun theirs;  // not ours to tidy up: the run we use is gone from the search
    theirs.info = found.front().info;
    theirs.found = true;
    return theirs;
  }
  std::sort(found.begin(), found.end(), [&](const MlflowRun& a, const MlflowRun& b) {
    const bool a_kept = a.info.run_id == keep, b_kept = b.info.run_id == keep;
    if (a_kept != b_kept) return a_kept;
    if (a.info.start_time != b.info.start_time) return a.info.start_time < b.info.start_time;
    return a.info.run_id < b.info.run_id;
  });
  CreatedRun out;
  out.info = found.front().info;
  out.found = true;
  for (std::size_t i = 1; i < found.size(); ++i) {
    const RunInfo& extra = found[i].info;
    try {
      if (extra.status == "RUNNING" || extra.status == "SCHEDULED") update_run(extra.run_id, "KILLED", extra.start_time);
      delete_run(extra.run_id);
      out.removed_duplicates.push_back(extra.run_id);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnavailable) throw;  // try again later, as for any request
      // Not allowed to tidy up (permissions): the run kept is still the one used.
      out.kept_duplicates.push_back(extra.run_id + " (" + e.what() + ")");
    }
  }
  return out;
}

CreatedRun MlflowClient::create_run_once(const std::string& experiment_id, const KeyValue& unique_tag,
                                         const std::string& run_name, std::int64_t start_time_ms,
                                         const std::vector<KeyValue>& tags, const std::string& user,
                                         bool may_exist) {
  std::vector<KeyValue> all = tags;
  if (std::none_of(all.begin(), all.end(), [&](const KeyValue& t) { return t.key == unique_tag.key; })) {
    all.push_back(unique_tag);
  }
  for (int attempt = 0;; ++attempt) {
    if (may_exist || attempt > 0) {
      if (auto found = find_unique_run(experiment_id, unique_tag)) {
        found->uncertain = true;
        return *found;
      }
    }
    try {
      CreatedRun created;
      created.info = create_run(experiment_id, run_name, start_time_ms, all, user);
      created.uncertain = may_exist || attempt > 0;
      return created;
    } catch (const Error& e) {
      // No clear answer: the create may have happened; look before trying again.
      if (e.code() != ErrorCode::kUnavailable) throw;
      backoff(attempt, 0, e);
    }
  }
}

void MlflowClient::delete_run(const std::string& run_id) {
  call("POST", "mlflow/runs/delete", dump_json({{"run_id", json_text(run_id)}}));
}

void MlflowClient::update_run(const std::string& run_id, const std::string& status, std::int64_t end_time_ms) {
  json body = {{"run_id", json_text(run_id)}, {"status", json_text(status)}};
  if (end_time_ms > 0) body["end_time"] = end_time_ms;
  call("POST", "mlflow/runs/update", dump_json(body));
}

MlflowRun MlflowClient::get_run(const std::string& run_id) {
  const json r = json::parse(call("GET", "mlflow/runs/get", dump_json({{"run_id", json_text(run_id)}})));
  return parse_run(r.at("run"));
}

std::vector<MlflowRun> MlflowClient::search_runs(const std::vector<std::string>& experiment_ids,
                                           const std::string& filter,
                                           const std::vector<std::string>& order_by, std::size_t page_size) {
  std::vector<MlflowRun> out;
  std::string token;
  do {
    json body = {{"experiment_ids", experiment_ids}, {"max_results", page_size}};
    if (!filter.empty()) body["filter"] = json_text(filter);
    if (!order_by.empty()) body["order_by"] = order_by;
    if (!token.empty()) body["page_token"] = token;
    const json r = json::parse(call("POST", "mlflow/runs/search", dump_json(body)));
    for (const auto& run : r.value("runs", json::array())) out.push_back(parse_run(run));
    token = as_string(r, "next_page_token");
  } while (!token.empty());
  return out;
}

void MlflowClient::log_batch(const std::string& run_id, const LogBatch& batch) {
  for (const auto& part : split_log_batch(batch)) {
    json metrics = json::array();
    for (const auto& m : part.metrics) metrics.push_back(metric_json(m));
    const json body = {{"run_id", json_text(run_id)}, {"metrics", metrics}, {"params", pairs_json(part.params)},
                       {"tags", pairs_json(part.tags)}};
    call("POST", "mlflow/runs/log-batch", dump_json(body));
  }
}

void MlflowClient::set_tag(const std::string& run_id, const std::string& key, const std::string& value) {
  call("POST", "mlflow/runs/set-tag",
       dump_json({{"run_id", json_text(run_id)}, {"key", json_text(key)}, {"value", json_text(value)}}));
}

void MlflowClient::log_inputs(const std::string& run_id, const std::vector<DatasetInput>& datasets) {
  constexpr std::size_t kMaxDatasets = 1000;  // MLflow's MAX_DATASETS_PER_BATCH
  for (std::size_t begin = 0; begin < datasets.size(); begin += kMaxDatasets) {
    json inputs = json::array();
    for (std::size_t i = begin; i < std::min(datasets.size(), begin + kMaxDatasets); ++i) {
      const DatasetInput& d = datasets[i];
      json dataset = {{"name", json_text(d.name)}, {"digest", json_text(d.digest)},
                      {"source_type", json_text(d.source_type)}, {"source", json_text(d.source)}};
      if (!d.schema.empty()) dataset["schema"] = json_text(d.schema);
      if (!d.profile.empty()) dataset["profile"] = json_text(d.profile);
      inputs.push_back({{"tags", pairs_json(d.tags)}, {"dataset", dataset}});
    }
    call("POST", "mlflow/runs/log-inputs", dump_json({{"run_id", json_text(run_id)}, {"datasets", inputs}}));
  }
}

std::vector<Metric> MlflowClient::get_metric_history(const std::string& run_id, const std::string& key) {
  std::vector<Metric> out;
  std::string token;
  do {
    json query = {{"run_id", json_text(run_id)}, {"metric_key", json_text(key)}, {"max_results", 25000}};
    if (!token.empty()) query["page_token"] = token;
    const json r = json::parse(call("GET", "mlflow/metrics/get-history", dump_json(query)));
    for (const auto& m : r.value("metrics", json::array())) {
      out.push_back({as_string(m, "key"), decode_metric_value(m.at("value")), as_int(m, "timestamp"), as_int(m, "step")});
    }
    token = as_string(r, "next_page_token");
  } while (!token.empty());
  std::sort(out.begin(), out.end(), [](const Metric& a, const Metric& b) {
    return a.step != b.step ? a.step < b.step : a.timestamp < b.timestamp;
  });
  return out;
}

// --- artifacts -----------------------------------------------------------------

std::string MlflowClient::artifact_url(const std::string& artifact_uri, const std::string& path) const {
  const std::string scheme = "mlflow-artifacts:";
  std::string rest;
  if (artifact_uri.rfind(scheme, 0) == 0) {
    rest = artifact_uri.substr(scheme.size());
    if (rest.rfind("//", 0) == 0) {  // mlflow-artifacts://host:port/path
      const auto slash = rest.find('/', 2);
      rest = slash == std::string::npos ? "" : rest.substr(slash);
    }
    rest = config_.tracking_uri + "/api/2.0/mlflow-artifacts/artifacts" + (rest.rfind('/', 0) == 0 ? "" : "/") + rest;
  } else if (artifact_uri.rfind("http://", 0) == 0 || artifact_uri.rfind("https://", 0) == 0) {
    rest = artifact_uri;
  } else {
    throw Error::failed_precondition("artifact location '" + artifact_uri +
                                     "' is not served by the tracking server (start mlflow server with "
                                     "--serve-artifacts)");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string encoded;
  std::size_t start = 0;
  while (start <= path.size() && !path.empty()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    const std::string seg = path.substr(start, slash - start);
    if (seg == "..") throw Error::invalid_argument("artifact path '" + path + "' may not contain '..'");
    if (!seg.empty()) encoded += "/" + url_encode(seg);
    start = slash + 1;
  }
  return rest + encoded;
}

void MlflowClient::upload_artifact(const std::string& artifact_uri, const std::string& path,
                                   const std::string& bytes) {
  HttpRequest request;
  request.method = "PUT";
  request.url = artifact_url(artifact_uri, path);
  request.body = bytes;
  request.headers.emplace_back("Content-Type", "application/octet-stream");
  send_with_retries(std::move(request));
}

std::string MlflowClient::download_artifact(const std::string& artifact_uri, const std::string& path) {
  HttpRequest request;
  request.url = artifact_url(artifact_uri, path);
  return send_with_retries(std::move(request));
}

std::vector<std::string> MlflowClient::list_artifacts(const std::string& artifact_uri, const std::string& path) {
  const std::string root = artifact_url(artifact_uri, "");
  const std::string anchor = "/api/2.0/mlflow-artifacts/artifacts";
  const auto at = root.find(anchor);
  if (at == std::string::npos) throw Error::failed_precondition("cannot list artifacts at " + artifact_uri);
  std::string prefix = root.substr(at + anchor.size());
  if (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  const std::string full = path.empty() ? prefix : prefix + "/" + path;
  HttpRequest request;
  request.url = config_.tracking_uri + anchor + "?path=" + url_encode(full);
  const json r = json::parse(send_with_retries(std::move(request)));
  std::vector<std::string> out;
  for (const auto& f : r.value("files", json::array())) {
    out.push_back((path.empty() ? "" : path + "/") + as_string(f, "path"));
  }
  return out;
}

// --- model registry --------------------------------------------------------------

RegisteredModel MlflowClient::create_registered_model(const std::string& name) {
  const json r = json::parse(call("POST", "mlflow/registered-models/create", dump_json({{"name", json_text(name)}})));
  return parse_registered_model(r.at("registered_model"));
}

RegisteredModel MlflowClient::get_registered_model(const std::string& name) {
  const json r = json::parse(call("GET", "mlflow/registered-models/get", dump_json({{"name", json_text(name)}})));
  return parse_registered_model(r.at("registered_model"));
}

ModelVersion MlflowClient::create_model_version(const std::string& name, const std::string& source,
                                                const std::string& run_id) {
  json body = {{"name", json_text(name)}, {"source", json_text(source)}};
  if (!run_id.empty()) body["run_id"] = json_text(run_id);
  const json r = json::parse(call("POST", "mlflow/model-versions/create", dump_json(body)));
  return parse_model_version(r.at("model_version"));
}

ModelVersion MlflowClient::get_model_version(const std::string& name, const std::string& version) {
  const json r = json::parse(call("GET", "mlflow/model-versions/get", dump_json({{"name", json_text(name)}, {"version", json_text(version)}})));
  return parse_model_version(r.at("model_version"));
}

void MlflowClient::set_model_version_tag(const std::string& name, const std::string& version,
                                         const std::string& key, const std::string& value) {
  call("POST", "mlflow/model-versions/set-tag",
       dump_json({{"name", json_text(name)}, {"version", json_text(version)}, {"key", json_text(key)},
                  {"value", json_text(value)}}));
}

void MlflowClient::set_registered_model_alias(const std::string& name, const std::string& alias,
                                              const std::string& version) {
  call("POST", "mlflow/registered-models/alias",
       dump_json({{"name", json_text(name)}, {"alias", json_text(alias)}, {"version", json_text(version)}}));
}

ModelVersion MlflowClient::get_model_version_by_alias(const std::string& name, const std::string& alias) {
  try {
    const json r = json::parse(call("GET", "mlflow/registered-models/alias", dump_json({{"name", json_text(name)}, {"alias", json_text(alias)}})));
    return parse_model_version(r.at("model_version"));
  } catch (const Error& e) {
    // MLflow reports a missing alias as INVALID_PARAMETER_VALUE, the same
    // code as a malformed request: the registered model's alias list tells
    // which it was (not the message's wording).
    if (e.code() != ErrorCode::kInvalidArgument) throw;
    if (get_registered_model(name).aliases.count(alias) == 0) {
      throw Error::not_found("registered model '" + json_text(name) + "' has no alias '" + json_text(alias) + "'");
    }
    throw;
  }
}

void MlflowClient::delete_registered_model_alias(const std::string& name, const std::string& alias) {
  call("DELETE", "mlflow/registered-models/alias", dump_json({{"name", json_text(name)}, {"alias", json_text(alias)}}));
}

}  // namespace fedtrack
