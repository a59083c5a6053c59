// S3Remote — a DVC remote on S3 (or an S3-compatible server): objects under
// `s3://bucket/prefix/files/md5/xx/rest`, the layout `dvc push` writes.
//
// Requests are signed by libcurl itself (CURLOPT_AWS_SIGV4); this file
// never computes a signature. Every request carries x-amz-content-sha256
// (the payload's SHA-256, so S3 checks the bytes it stores), uploads also
// Content-MD5; a session token goes in x-amz-security-token. A custom
// `endpointurl` is addressed path-style (endpoint/bucket/key); AWS itself
// virtual-hosted (bucket.s3.region.amazonaws.com), path-style for bucket
// names with a dot.
//
// Settings are resolved the way dvc-s3 (s3fs + botocore) resolves them:
//  - credentials: the remote's access_key_id + secret_access_key
//    (+ session_token), usually in .dvc/config.local; else, when the remote
//    names a `profile`, that profile of the shared credentials file
//    (AWS_SHARED_CREDENTIALS_FILE, else the remote's credentialpath, else
//    ~/.aws/credentials) or of the config file (AWS_CONFIG_FILE, else the
//    remote's configpath, else ~/.aws/config) — an explicit profile
//    ignores AWS_ACCESS_KEY_ID as botocore does; else AWS_ACCESS_KEY_ID +
//    AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); else the profile
//    AWS_PROFILE (or "default") from those files. allow_anonymous_login =
//    true sends unsigned requests when nothing is found.
//  - region: the remote's `region`, else AWS_REGION, AWS_DEFAULT_REGION,
//    the profile's region in the config file, else us-east-1.
//  - endpoint: the remote's `endpointurl`, else AWS_ENDPOINT_URL_S3,
//    AWS_ENDPOINT_URL, the profile's endpoint_url; else AWS.
//  - use_ssl, ssl_verify (false or a CA bundle path), connect_timeout and
//    read_timeout (seconds) as DVC documents them. Settings that change
//    what is stored (sse*, acl, grant_*) are refused, not ignored.
//
// Errors name the remote (its name and s3:// url) and where the
// credentials came from, never a secret: refused credentials
// (InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken, AccessDenied,
// RequestTimeTooSkewed, none found) → kUnauthenticated / kPermissionDenied;
// NoSuchBucket → kNotFound; a wrong region → kInvalidArgument; a server
// that cannot be reached or keeps failing (5xx, after 3 tries) →
// kUnavailable.
//
// Not thread-safe; cheap to construct.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "dvc_remote_config.h"
#include "fedtrack/core/error.h"

namespace fedtrack {

// Where settings come from besides the remote's section: the environment
// (AWS_*, HOME). Injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_environment();

struct S3Settings {
  std::string remote;         // DvcRemote::describe(), for messages
  std::string bucket;
  std::string prefix;         // without leading/trailing '/'; may be ""
  std::string endpoint;       // scheme://host[:port], no trailing '/'
  bool path_style = false;
  std::string region = "us-east-1";
  std::string access_key_id;  // "" = unsigned requests (allow_anonymous_login)
  std::string secret_access_key;
  std::string session_token;
  std::string credentials_from;  // e.g. "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "profile 'ci' in /h/.aws/credentials"
  bool verify_tls = true;
  std::string ca_bundle;      // ssl_verify = a path
  long connect_timeout = 60;  // seconds
  long read_timeout = 60;     // seconds without a byte
};

// Resolves the settings of an s3:// remote (see the header comment).
// Error(kInvalidArgument) for a malformed url or setting, naming it;
// Error(kUnauthenticated) when no credentials are found anywhere.
S3Settings resolve_s3_settings(const DvcRemote& remote, const EnvLookup& env);

// The Error for an S3 error answer (HTTP `status`, XML `body`) to `method`
// on `key`: one line naming the remote and the credentials' source, never
// a secret; the codes as in the header comment.
Error s3_error(const S3Settings& settings, const std::string& method, const std::string& key, long status,
               const std::string& body);

class S3Remote {
 public:
  explicit S3Remote(S3Settings settings);

  // The object key of a DVC 3 (or legacy) object: prefix/files/md5/ab/cd…
  std::string object_key(const std::string& md5, bool legacy = false) const;
  std::string object_url(const std::string& key) const;

  // Uploads `bytes` (whose md5 is `md5`) unless the object is already
  // there with that size (HEAD 200). Returns true when it uploaded.
  bool push(const std::string& md5, const std::string& bytes);

  // Checks, before any round, that the bucket exists and the credentials
  // are accepted: a GET of an object that is not there (404 NoSuchKey, or
  // 403 AccessDenied from credentials without s3:ListBucket, both fine).
  // Throws what a push would (see the header comment).
  void probe();

  // The object's bytes, or nullopt when the remote does not have it (404).
  // At most `max_bytes` are read (more is Error(kCorruption)).
  std::optional<std::string> fetch(const std::string& md5, bool legacy, std::uint64_t max_bytes);

  // The object's size when the remote has it (HEAD 200), nullopt when it
  // does not (404); any other answer throws as a push would.
  std::optional<std::uint64_t> size_of(const std::string& md5, bool legacy);

  const S3Settings& settings() const { return settings_; }

 private:
  S3Settings settings_;
};

}  // namespace fedtrack
