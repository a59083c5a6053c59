#include "s3_remote.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "dvc_format.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMaxSinglePut = 5ULL << 30;  // S3's limit for one PUT
constexpr std::size_t kMaxErrorBody = 64 * 1024;
constexpr int kAttempts = 3;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<bool> parse_bool(const std::string& v) {
  const std::string l = lower(v);
  if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return false;
  return std::nullopt;
}

std::optional<std::string> non_empty(const std::optional<std::string>& v) {
  if (v && !v->empty()) return v;
  return std::nullopt;
}

// An AWS shared file (credentials or config) as INI; missing = empty.
DvcConfig read_aws_file(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec)) return {};
  return parse_dvc_config(read_file(path));
}

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_sha256(), nullptr);
  return hex(digest, n);
}

// Content-MD5: base64 of the 16 raw bytes of the md5.
std::string content_md5(const std::string& md5_hex) {
  unsigned char raw[16];
  for (int i = 0; i < 16; ++i) raw[i] = static_cast<unsigned char>(std::stoi(md5_hex.substr(2 * i, 2), nullptr, 16));
  unsigned char out[32];
  const int n = EVP_EncodeBlock(out, raw, 16);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

// RFC 3986 unreserved characters stay; everything else is %XX, '/' kept.
std::string encode_key(const std::string& key) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// The text of one XML element of an S3 error body, or "".
std::string xml_field(const std::string& body, const std::string& name) {
  const std::string open = "<" + name + ">", close = "</" + name + ">";
  const auto a = body.find(open);
  if (a == std::string::npos) return "";
  const auto b = body.find(close, a + open.size());
  if (b == std::string::npos) return "";
  return body.substr(a + open.size(), b - a - open.size());
}

std::string one_line(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return truncate_utf8(to_valid_utf8(s), 300);
}

void ensure_curl() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw Error::internal(std::string("curl_global_init: ") + curl_easy_strerror(rc));
}

struct Response {
  long status = 0;
  std::string body;
  std::uint64_t content_length = 0;
  bool too_large = false;
};

struct Upload {
  const std::string* bytes = nullptr;
  std::size_t offset = 0;
};

std::size_t read_cb(char* out, std::size_t size, std::size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  const std::size_t left = up->bytes->size() - up->offset;
  const std::size_t take = std::min(left, size * n);
  std::memcpy(out, up->bytes->data() + up->offset, take);
  up->offset += take;
  return take;
}

struct Sink {
  Response* response;
  std::uint64_t max_bytes;
};

std::size_t write_cb(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t len = size * n;
  if (sink->response->body.size() + len > sink->max_bytes) {
    sink->response->too_large = true;
    return 0;  // abort the transfer
  }
  sink->response->body.append(data, len);
  return len;
}

using Curl = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using Headers = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

S3Settings resolve_s3_settings(const DvcRemote& remote, const EnvLookup& env) {
  S3Settings s;
  s.remote = remote.describe();
  const auto setting = [&](const std::string& key) -> std::optional<std::string> {
    auto it = remote.settings.find(key);
    if (it == remote.settings.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  const auto bad = [&](const std::string& what) { return Error::invalid_argument(s.remote + ": " + what); };

  // s3://bucket/prefix
  const std::string rest = remote.url.substr(5);
  if (rest.substr(0, rest.find('/')).find_first_of("@:") != std::string::npos) {
    throw bad("credentials do not belong in an s3:// url (they would be committed in .dvc/config); use "
              "access_key_id/secret_access_key in .dvc/config.local or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
  }
  const auto slash = rest.find('/');
  s.bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  s.prefix = prefix;
  if (s.bucket.empty() || s.bucket.size() > 63 || s.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_") !=
                                                       std::string::npos) {
    throw bad("'" + s.bucket + "' is not an S3 bucket name (3-63 of a-z 0-9 . - _)");
  }
  for (const char* key : {"sse", "sse_kms_key_id", "sse_customer_algorithm", "sse_customer_key", "acl", "grant_read",
                          "grant_read_acp", "grant_write_acp", "grant_full_control"}) {
    if (setting(key)) {
      throw bad(std::string("setting '") + key + "' is not supported by fedtrack's S3 uploads; remove it or push "
                                                 "with `dvc push`");
    }
  }

  const std::string home = non_empty(env("HOME")).value_or("");
  const std::string credentials_file =
      non_empty(env("AWS_SHARED_CREDENTIALS_FILE"))
          .value_or(setting("credentialpath").value_or(home.empty() ? "" : home + "/.aws/credentials"));
  const std::string config_file =
      non_empty(env("AWS_CONFIG_FILE")).value_or(setting("configpath").value_or(home.empty() ? "" : home + "/.aws/config"));
  const auto explicit_profile = setting("profile");
  const std::string profile = explicit_profile.value_or(non_empty(env("AWS_PROFILE")).value_or("default"));
  const DvcConfig credentials = read_aws_file(credentials_file);
  const DvcConfig config = read_aws_file(config_file);
  const std::string config_section = profile == "default" ? "default" : "profile " + profile;
  const auto from_files = [&](const std::string& key) -> std::optional<std::string> {
    if (auto c = credentials.find(profile); c != credentials.end()) {
      if (auto v = c->second.find(key); v != c->second.end() && !v->second.empty()) return v->second;
    }
    if (auto c = config.find(config_section); c != config.end()) {
      if (auto v = c->second.find(key); v != c->second.end() && !v->second.empty()) return v->second;
    }
    return std::nullopt;
  };
  const auto profile_credentials = [&]() {
    const auto id = from_files("aws_access_key_id");
    const auto secret = from_files("aws_secret_access_key");
    if (!id || !secret) return false;
    s.access_key_id = *id;
    s.secret_access_key = *secret;
    s.session_token = from_files("aws_session_token").value_or("");
    const bool in_credentials = credentials.count(profile) && credentials.at(profile).count("aws_access_key_id");
    s.credentials_from = "profile '" + profile + "' in " + (in_credentials ? credentials_file : config_file);
    return true;
  };

  // Credentials, in botocore's order as dvc-s3 drives it.
  if (setting("access_key_id") || setting("secret_access_key")) {
    if (!setting("access_key_id") || !setting("secret_access_key")) {
      throw bad("has only one of access_key_id and secret_access_key; set both (`dvc remote modify --local " +
                remote.name + " access_key_id ...` and `... secret_access_key ...`)");
    }
    s.access_key_id = *setting("access_key_id");
    s.secret_access_key = *setting("secret_access_key");
    s.session_token = setting("session_token").value_or("");
    s.credentials_from = "the remote's access_key_id/secret_access_key (.dvc/config or config.local)";
  } else if (explicit_profile) {
    if (!profile_credentials()) {
      throw Error(ErrorCode::kUnauthenticated, s.remote + ": profile '" + profile + "' has no aws_access_key_id/"
                                                   "aws_secret_access_key in " + credentials_file + " or " + config_file);
    }
  } else if (non_empty(env("AWS_ACCESS_KEY_ID")) && non_empty(env("AWS_SECRET_ACCESS_KEY"))) {
    s.access_key_id = *env("AWS_ACCESS_KEY_ID");
    s.secret_access_key = *env("AWS_SECRET_ACCESS_KEY");
    s.session_token = non_empty(env("AWS_SESSION_TOKEN")).value_or("");
    s.credentials_from = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
  } else if (!profile_credentials()) {
    const auto anonymous = setting("allow_anonymous_login");
    if (!(anonymous && parse_bool(*anonymous).value_or(false))) {
      throw Error(ErrorCode::kUnauthenticated,
                  s.remote + ": no S3 credentials found (remote access_key_id/secret_access_key in "
                             ".dvc/config.local, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or profile '" +
                      profile + "' in " + (credentials_file.empty() ? "~/.aws/credentials" : credentials_file) + ")");
    }
    s.credentials_from = "none (allow_anonymous_login)";
  }
  if (!s.session_token.empty()) s.credentials_from += ", with a session token";

  s.region = setting("region")
                 .value_or(non_empty(env("AWS_REGION"))
                               .value_or(non_empty(env("AWS_DEFAULT_REGION")).value_or(from_files("region").value_or("us-east-1"))));
  if (s.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    throw bad("region '" + s.region + "' is not an AWS region name");
  }

  bool use_ssl = true;
  if (auto v = setting("use_ssl")) {
    auto b = parse_bool(*v);
    if (!b) throw bad("use_ssl must be true or false, got '" + *v + "'");
    use_ssl = *b;
  }
  if (auto v = setting("ssl_verify")) {
    if (auto b = parse_bool(*v)) {
      s.verify_tls = *b;
    } else {
      s.ca_bundle = *v;
    }
  }
  for (auto [key, target] : {std::pair<const char*, long*>{"connect_timeout", &s.connect_timeout},
                             std::pair<const char*, long*>{"read_timeout", &s.read_timeout}}) {
    if (auto v = setting(key)) {
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (!end || *end || n <= 0 || n > 3600) throw bad(std::string(key) + " must be 1..3600 seconds, got '" + *v + "'");
      *target = n;
    }
  }

  auto endpoint = setting("endpointurl");
  if (!endpoint) endpoint = non_empty(env("AWS_ENDPOINT_URL_S3"));
  if (!endpoint) endpoint = non_empty(env("AWS_ENDPOINT_URL"));
  if (!endpoint) endpoint = from_files("endpoint_url");
  if (endpoint) {
    std::string e = *endpoint;
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
      throw bad("endpointurl must start with http:// or https://, got '" + redact_uri(e) + "'");
    }
    if (e.find('/', e.find("://") + 3) != std::string::npos) {
      throw bad("endpointurl must be scheme://host[:port] without a path, got '" + redact_uri(e) + "'");
    }
    s.endpoint = e;
    s.path_style = true;
  } else {
    const std::string scheme = use_ssl ? "https://" : "http://";
    if (s.bucket.find('.') != std::string::npos) {
      s.endpoint = scheme + "s3." + s.region + ".amazonaws.com";
      s.path_style = true;
    } else {
      s.endpoint = scheme + s.bucket + ".s3." + s.region + ".amazonaws.com";
    }
  }
  return s;
}

S3Remote::S3Remote(S3Settings settings) : settings_(std::move(settings)) {}

std::string S3Remote::object_key(const std::string& md5, bool legacy) const {
  const std::string rel = object_path("", md5, legacy).substr(1);  // "files/md5/ab/cd…" (object_path joins with '/')
  return settings_.prefix.empty() ? rel : settings_.prefix + "/" + rel;
}

std::string S3Remote::object_url(const std::string& key) const {
  return settings_.endpoint + "/" + (settings_.path_style ? encode_key(settings_.bucket) + "/" : "") + encode_key(key);
}

namespace {

// One signed request with retries on connection errors and 5xx / 429.
Response s3_request(const S3Settings& s, const std::string& method, const std::string& url, const std::string& key,
                    const std::string* body, const std::string& md5, std::uint64_t max_bytes) {
  ensure_curl();
  const std::string where = s.remote + ", " + method + " s3://" + s.bucket + "/" + key;
  std::string last_problem;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250 << (attempt - 1)));
    Curl curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) throw Error::internal("curl_easy_init failed");
    CURL* h = curl.get();
    Response response;
    Sink sink{&response, method == "GET" ? max_bytes : kMaxErrorBody};
    Upload upload{body, 0};
    curl_slist* raw = nullptr;
    auto add = [&](const std::string& line) { raw = curl_slist_append(raw, line.c_str()); };
    add("x-amz-content-sha256: " + (body ? sha256_hex(*body) : sha256_hex("")));
    if (!s.session_token.empty()) add("x-amz-security-token: " + s.session_token);
    if (body) {
      add("Content-MD5: " + content_md5(md5));
      add("Content-Type: application/octet-stream");
      // No "Expect:" override: libcurl 7.88 signs the emptied header but does
      // not send it (SignatureDoesNotMatch); 100-continue also lets S3 refuse
      // bad credentials before the body is sent.
    }
    Headers headers(raw, &curl_slist_free_all);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s.connect_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s.read_timeout);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s.verify_tls ? 2L : 0L);
    if (!s.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, s.ca_bundle.c_str());
    const std::string sigv4 = "aws:amz:" + s.region + ":s3";
    const std::string userpwd = s.access_key_id + ":" + s.secret_access_key;
    if (!s.access_key_id.empty()) {
      curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
      curl_easy_setopt(h, CURLOPT_USERPWD, userpwd.c_str());
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt(h, CURLOPT_READDATA, &upload);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    const CURLcode rc = curl_easy_perform(h);
    if (response.too_large) {
      throw Error::corruption(where + ": the object is larger than the " + std::to_string(max_bytes) +
                              " bytes its .dvc file records");
    }
    if (rc != CURLE_OK) {
      last_problem = curl_easy_strerror(rc);
      continue;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    curl_off_t length = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    response.content_length = length < 0 ? 0 : static_cast<std::uint64_t>(length);
    const std::string code = xml_field(response.body, "Code");
    if (response.status >= 500 || response.status == 429 || code == "SlowDown") {
      last_problem = "HTTP " + std::to_string(response.status) + (code.empty() ? "" : " " + code);
      continue;
    }
    return response;
  }
  throw Error::unavailable(where + ": cannot reach " + s.endpoint + " (" + last_problem + ", " +
                           std::to_string(kAttempts) + " tries)");
}

}  // namespace

Error s3_error(const S3Settings& s, const std::string& method, const std::string& key, long status,
               const std::string& body) {
  const Response r{status, body, 0, false};
  const std::string code = one_line(xml_field(r.body, "Code"));
  const std::string message = one_line(xml_field(r.body, "Message"));
  const std::string what = s.remote + ": " + method + " s3://" + s.bucket + "/" + key + " failed: HTTP " +
                           std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                           (message.empty() ? "" : " (" + message + ")");
  const std::string creds = "; credentials from " + s.credentials_from;
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" ||
      code == "InvalidToken" || code == "TokenRefreshRequired" || code == "InvalidClientTokenId" ||
      (r.status == 403 && code.empty()) || r.status == 401) {
    return Error(ErrorCode::kUnauthenticated, what + ": S3 refused the credentials" + creds);
  }
  if (code == "RequestTimeTooSkewed") {
    return Error(ErrorCode::kUnauthenticated, what + ": this machine's clock differs too much from the server's; "
                                                    "fix the clock (NTP)");
  }
  if (code == "AccessDenied" || code == "AllAccessDisabled" || r.status == 403) {
    return Error::permission_denied(what + ": the credentials are not allowed to do this" + creds);
  }
  if (code == "NoSuchBucket") {
    return Error::not_found(what + ": bucket '" + s.bucket + "' does not exist; create it or fix the remote's url");
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException" ||
      r.status == 301) {
    const std::string region = one_line(xml_field(r.body, "Region"));
    return Error::invalid_argument(what + ": wrong region '" + s.region + "'" +
                                  (region.empty() ? "" : ", the bucket is in '" + region + "'") +
                                  "; set it with `dvc remote modify <remote> region REGION`");
  }
  if (code == "BadDigest" || code == "XAmzContentSHA256Mismatch") {
    return Error::corruption(what + ": the bytes were damaged on the way");
  }
  return Error::unavailable(what);
}

namespace {

[[noreturn]] void throw_s3_error(const S3Settings& s, const std::string& method, const std::string& key,
                                 const Response& r) {
  throw s3_error(s, method, key, r.status, r.body);
}

}  // namespace

bool S3Remote::push(const std::string& md5, const std::string& bytes) {
  const std::string key = object_key(md5);
  const std::string url = object_url(key);
  if (bytes.size() > kMaxSinglePut) {
    throw Error::invalid_argument(settings_.remote + ": the model is " + std::to_string(bytes.size()) +
                                  " bytes; fedtrack uploads at most 5 GiB in one PUT");
  }
  const Response head = s3_request(settings_, "HEAD", url, key, nullptr, "", kMaxErrorBody);
  if (head.status == 200 && head.content_length == bytes.size()) return false;  // already there
  // 404: not there. 403 on HEAD may just mean no s3:ListBucket; the PUT says what is wrong.
  if (head.status != 200 && head.status != 404 && head.status != 403) throw_s3_error(settings_, "HEAD", key, head);
  const Response put = s3_request(settings_, "PUT", url, key, &bytes, md5, kMaxErrorBody);
  if (put.status != 200) throw_s3_error(settings_, "PUT", key, put);
  return true;
}

std::optional<std::uint64_t> S3Remote::size_of(const std::string& md5, bool legacy) {
  const std::string key = object_key(md5, legacy);
  const Response head = s3_request(settings_, "HEAD", object_url(key), key, nullptr, "", kMaxErrorBody);
  if (head.status == 404) return std::nullopt;
  if (head.status != 200) throw_s3_error(settings_, "HEAD", key, head);
  return head.content_length;
}

void S3Remote::probe() {
  const std::string key = object_key(std::string(32, '0'));
  const Response r = s3_request(settings_, "GET", object_url(key), key, nullptr, "", kMaxErrorBody);
  const std::string code = xml_field(r.body, "Code");
  if (r.status == 200 || (r.status == 404 && code != "NoSuchBucket") || (r.status == 403 && code == "AccessDenied")) {
    return;
  }
  throw_s3_error(settings_, "checking the remote: GET", key, r);
}

std::optional<std::string> S3Remote::fetch(const std::string& md5, bool legacy, std::uint64_t max_bytes) {
  const std::string key = object_key(md5, legacy);
  Response r = s3_request(settings_, "GET", object_url(key), key, nullptr, "", std::max<std::uint64_t>(max_bytes, kMaxErrorBody));
  if (r.status == 200) {
    if (r.body.size() > max_bytes) {
      throw Error::corruption(settings_.remote + ": s3://" + settings_.bucket + "/" + key + " is larger than the " +
                              std::to_string(max_bytes) + " bytes its .dvc file records");
    }
    return std::move(r.body);
  }
  if (r.status == 404 && xml_field(r.body, "Code") != "NoSuchBucket") return std::nullopt;
  throw_s3_error(settings_, "GET", key, r);
}

}  // namespace fedtrack
