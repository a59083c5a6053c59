#include "git_credentials.h"

#include <libssh2.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <optional>
#include <utility>
#include <filesystem>

#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string home() {
  std::string h = env("HOME");
  if (h.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid())) h = pw->pw_dir ? pw->pw_dir : "";
  }
  return h;
}

std::string local_user() {
  std::string u = env("USER");
  if (u.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid())) u = pw->pw_name ? pw->pw_name : "";
  }
  return u;
}

// Whether `pattern` (the <url> of http.<url>.extraheader) covers `url`, as
// git matches it: a prefix ending at a path boundary.
bool url_matches(const std::string& pattern, const std::string& url) {
  if (pattern.empty() || url.compare(0, pattern.size(), pattern) != 0) return false;
  if (pattern.back() == '/' || url.size() == pattern.size()) return true;
  const char next = url[pattern.size()];
  return next == '/' || next == '?' || next == '#';
}

bool is_http(const std::string& url) { return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0; }

// The host part of a URL (scp-like `user@host:path` too), for messages.
std::string host_of(const std::string& url) {
  std::string rest = url;
  if (auto sep = rest.find("://"); sep != std::string::npos) {
    rest = rest.substr(sep + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
  } else {
    rest = rest.substr(0, rest.find(':'));
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  return rest;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The user (maybe "") and password (if any) in a URL's authority, decoded.
std::pair<std::string, std::optional<std::string>> url_userinfo(const std::string& url) {
  const auto sep = url.find("://");
  if (sep == std::string::npos) return {"", std::nullopt};
  const std::string authority = url.substr(sep + 3, url.find_first_of("/?#", sep + 3) - (sep + 3));
  const auto at = authority.rfind('@');
  if (at == std::string::npos) return {"", std::nullopt};
  const std::string info = authority.substr(0, at);
  const auto colon = info.find(':');
  if (colon == std::string::npos) return {percent_decode(info), std::nullopt};
  return {percent_decode(info.substr(0, colon)), percent_decode(info.substr(colon + 1))};
}

// The port of an ssh:// URL (22 when none; scp-like URLs have none).
int port_of(const std::string& url) {
  const std::string hostport = host_of(url);
  if (url.find("://") == std::string::npos) return 22;
  const auto colon = hostport.rfind(':');
  const auto bracket = hostport.find(']');
  if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon)) return 22;
  try {
    return std::stoi(hostport.substr(colon + 1));
  } catch (const std::exception&) {
    return 22;
  }
}

int knownhost_key_type(git_cert_ssh_raw_type_t t) {
  switch (t) {
    case GIT_CERT_SSH_RAW_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case GIT_CERT_SSH_RAW_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

// "" when `host`:`port` has exactly this key in the OpenSSH known_hosts
// `file` (plain, hashed and [host]:port entries, as libssh2 reads them);
// else why not.
std::string known_hosts_problem(const std::string& file, const std::string& host, int port,
                                const git_cert_hostkey& key) {
  if (!(key.type & GIT_CERT_SSH_RAW) || !key.hostkey) return "libssh2 gave no raw host key to check";
  LIBSSH2_SESSION* session = libssh2_session_init();
  if (!session) return "cannot start libssh2";
  LIBSSH2_KNOWNHOSTS* hosts = libssh2_knownhost_init(session);
  std::string problem;
  if (!hosts) {
    problem = "cannot read known hosts";
  } else if (libssh2_knownhost_readfile(hosts, file.c_str(), LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
    problem = "is not in " + file + " (it cannot be read)";
  } else {
    const int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_key_type(key.raw_type);
    switch (libssh2_knownhost_checkp(hosts, host.c_str(), port, key.hostkey, key.hostkey_len, mask, nullptr)) {
      case LIBSSH2_KNOWNHOST_CHECK_MATCH: break;
      case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        problem = "does not match the key " + file + " records for it (the host key changed, or someone is "
                  "in the middle)";
        break;
      case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND: problem = "is not in " + file; break;
      default: problem = "could not be checked against " + file;
    }
  }
  if (hosts) libssh2_knownhost_free(hosts);
  libssh2_session_free(session);
  return problem;
}

}  // namespace

GitRemoteAuth::GitRemoteAuth(git_repository* repo, git_remote* remote) {
  const char* url = git_remote_pushurl(remote);
  if (!url || !*url) url = git_remote_url(remote);
  url_ = url ? url : "";
  const char* remote_name = git_remote_name(remote);
  printable_ = std::string(remote_name ? remote_name : "remote") + " (" + redact_uri(url_) + ")";
  host_ = host_of(url_);
  port_ = port_of(url_);
  ssh_ = url_.rfind("ssh://", 0) == 0 || url_.rfind("git+ssh://", 0) == 0 || url_.rfind("ssh+git://", 0) == 0 ||
         (!is_http(url_) && url_.find("://") == std::string::npos && url_.find(':') != std::string::npos &&
          url_.find(':') < url_.find('/'));

  if (is_http(url_)) {
    const std::string bare = redact_uri(url_);  // user info never takes part in matching
    git_config* config = nullptr;
    if (git_repository_config_snapshot(&config, repo) == 0) {
      git_config_iterator* it = nullptr;
      if (git_config_iterator_glob_new(&it, config, "^http\\..*extraheader$") == 0) {
        git_config_entry* entry = nullptr;
        while (git_config_next(&entry, it) == 0) {
          const std::string name = entry->name;  // http[.<url>].extraheader
          const std::string middle = name.size() > 17 ? name.substr(5, name.size() - 17) : "";
          if (!middle.empty() && !url_matches(middle, bare)) continue;
          const std::string value = entry->value ? entry->value : "";
          if (value.empty()) {
            header_values_.clear();  // git: an empty value resets the list
            continue;
          }
          const auto colon = value.find(':');
          if (colon == std::string::npos || colon == 0 || value.find_first_of("\r\n") != std::string::npos) {
            throw Error::invalid_argument("git config " + name + " is not an HTTP header ('Name: value'); fix or "
                                          "unset it (its value is not shown: it may hold a secret)");
          }
          header_values_.push_back(value);
          tried_.push_back("the header from git config " + name);
        }
        git_config_iterator_free(it);
      }
      git_config_free(config);
    }
  }
  // Credentials go with the first request (as the extraheader does) rather
  // than after a 401 challenge: one round trip less, and libgit2 1.5 cannot
  // replay a request after a 401 that has a body ("http parser error:
  // invalid constant string"), which most servers send.
  if (is_http(url_)) {
    bool has_authorization = false;
    for (const auto& h : header_values_) {
      std::string name = h.substr(0, h.find(':'));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "authorization") has_authorization = true;
    }
    const auto [url_user, url_password] = url_userinfo(url_);
    const std::string token = env("FEDTRACK_GIT_TOKEN");
    const std::string env_user = env("FEDTRACK_GIT_USERNAME");
    if (!has_authorization && url_password) {
      header_values_.push_back("Authorization: Basic " + base64(url_user + ":" + *url_password));
      tried_.push_back("the user and password in the remote URL");
      token_tried_ = true;  // a 401 then ends it: the URL's password was refused
    } else if (!has_authorization && !token.empty()) {
      const std::string user = !env_user.empty() ? env_user : !url_user.empty() ? url_user : "x-access-token";
      header_values_.push_back("Authorization: Basic " + base64(user + ":" + token));
      tried_.push_back("the token in FEDTRACK_GIT_TOKEN as user " + user);
      token_tried_ = true;
    }
    if (has_authorization) token_tried_ = true;
  }
  for (auto& h : header_values_) header_ptrs_.push_back(h.data());

  if (const std::string key = env("FEDTRACK_GIT_SSH_KEY"); !key.empty()) {
    ssh_keys_.push_back(key);
  } else {
    const std::string h = home();
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      const fs::path p = fs::path(h) / ".ssh" / name;
      std::error_code ec;
      if (!h.empty() && fs::is_regular_file(p, ec)) ssh_keys_.push_back(p.string());
    }
  }
}

git_remote_callbacks GitRemoteAuth::callbacks() {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = &GitRemoteAuth::credential_cb;
  cb.certificate_check = &GitRemoteAuth::certificate_cb;
  cb.push_update_reference = &GitRemoteAuth::push_status_cb;
  cb.payload = this;
  return cb;
}

git_strarray GitRemoteAuth::headers() { return {header_ptrs_.data(), header_ptrs_.size()}; }

int GitRemoteAuth::credential_cb(git_credential** out, const char*, const char* username_from_url,
                                 unsigned int allowed, void* payload) {
  return static_cast<GitRemoteAuth*>(payload)->credential(out, username_from_url, allowed);
}

int GitRemoteAuth::credential(git_credential** out, const char* username_from_url, unsigned int allowed) {
  const std::string url_user = username_from_url ? username_from_url : "";
  const std::string env_user = env("FEDTRACK_GIT_USERNAME");
  if (allowed & GIT_CREDENTIAL_USERNAME) {
    const std::string user = !url_user.empty() ? url_user : !env_user.empty() ? env_user : local_user();
    return git_credential_username_new(out, user.c_str());
  }
  if (allowed & GIT_CREDENTIAL_SSH_KEY) {
    const std::string user = !url_user.empty() ? url_user : !env_user.empty() ? env_user : local_user();
    if (env("FEDTRACK_GIT_SSH_KEY").empty() && !agent_tried_ && !env("SSH_AUTH_SOCK").empty()) {
      agent_tried_ = true;
      tried_.push_back("ssh-agent (SSH_AUTH_SOCK) as user " + user);
      ++offered_;
      return git_credential_ssh_key_from_agent(out, user.c_str());
    }
    while (!ssh_keys_.empty()) {
      const std::string key = ssh_keys_.front();
      ssh_keys_.erase(ssh_keys_.begin());
      std::error_code ec;
      if (!fs::is_regular_file(key, ec)) {
        tried_.push_back("key " + key + " (FEDTRACK_GIT_SSH_KEY: no such file)");
        continue;
      }
      const std::string pub = key + ".pub";
      const std::string passphrase = env("FEDTRACK_GIT_SSH_PASSPHRASE");
      tried_.push_back("key " + key + " as user " + user);
      ++offered_;
      return git_credential_ssh_key_new(out, user.c_str(), fs::is_regular_file(pub, ec) ? pub.c_str() : nullptr,
                                        key.c_str(), passphrase.empty() ? nullptr : passphrase.c_str());
    }
  } else if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
    const std::string token = env("FEDTRACK_GIT_TOKEN");
    if (!token_tried_ && !token.empty()) {
      token_tried_ = true;
      const std::string user = !env_user.empty() ? env_user : !url_user.empty() ? url_user : "x-access-token";
      tried_.push_back("the token in FEDTRACK_GIT_TOKEN as user " + user);
      ++offered_;
      return git_credential_userpass_plaintext_new(out, user.c_str(), token.c_str());
    }
  }
  exhausted_ = true;
  git_error_set_str(GIT_ERROR_NET, "no more credentials to offer");
  return GIT_EAUTH;
}

int GitRemoteAuth::push_status_cb(const char* refname, const char* status, void* payload) {
  if (status) static_cast<GitRemoteAuth*>(payload)->rejected_.emplace_back(refname ? refname : "", status);
  return 0;
}

int GitRemoteAuth::certificate_cb(git_cert* cert, int, const char* host, void* payload) {
  auto* self = static_cast<GitRemoteAuth*>(payload);
  if (!cert || cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return 1;  // TLS: libgit2's CA check decides
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  if (key->type & GIT_CERT_SSH_SHA256) {
    unsigned char b64[64] = {};
    EVP_EncodeBlock(b64, key->hash_sha256, sizeof key->hash_sha256);
    std::string fp = reinterpret_cast<const char*>(b64);
    while (!fp.empty() && fp.back() == '=') fp.pop_back();
    self->host_key_ = "SHA256:" + fp;
  }
  std::string file = env("FEDTRACK_GIT_SSH_KNOWN_HOSTS");
  if (file.empty()) file = (fs::path(home()) / ".ssh" / "known_hosts").string();
  self->host_key_problem_ = known_hosts_problem(file, host ? host : self->host_, self->port_, *key);
  if (self->host_key_problem_.empty()) return 0;
  git_error_set_str(GIT_ERROR_SSH, "host key refused");
  return GIT_ECERTIFICATE;
}

void GitRemoteAuth::fail(int rc, const std::string& what) const {
  const git_error* e = git_error_last();
  const std::string detail = redact_secrets(e && e->message ? e->message : "libgit2 error");
  const std::string head = what + " " + printable_ + ": ";
  if (!host_key_problem_.empty()) {
    const std::string suffix = ":" + std::to_string(port_);
    const bool with_port = host_.size() > suffix.size() && host_.compare(host_.size() - suffix.size(), suffix.size(), suffix) == 0;
    const std::string h = with_port ? host_.substr(0, host_.size() - suffix.size()) : host_;
    throw Error(ErrorCode::kUnauthenticated,
                head + "the SSH host key of " + host_ + (host_key_.empty() ? "" : " (" + host_key_ + ")") + " " +
                    host_key_problem_ + "; check the key with the server's owner, then add it: ssh-keyscan -p " +
                    std::to_string(port_) + " " + h + " >> ~/.ssh/known_hosts (or the file "
                    "FEDTRACK_GIT_SSH_KNOWN_HOSTS names)");
  }
  if (rc == GIT_ECERTIFICATE) {
    throw Error(ErrorCode::kUnauthenticated, head + "the server's TLS certificate was refused: " + detail);
  }
  const bool auth = rc == GIT_EAUTH || exhausted_ || detail.find("401") != std::string::npos ||
                    detail.find("authentication") != std::string::npos;
  if (auth) {
    std::string tried;
    for (const auto& t : tried_) tried += (tried.empty() ? "" : ", ") + t;
    std::string hint = ssh_ ? "set FEDTRACK_GIT_SSH_KEY to a key the server accepts, or run an ssh-agent"
                            : "set FEDTRACK_GIT_TOKEN (and FEDTRACK_GIT_USERNAME), or an http.<url>.extraheader";
    throw Error(ErrorCode::kUnauthenticated,
                head + "the server refused the credentials (" +
                    (tried.empty() ? std::string("none were offered") : "tried " + tried) + "); " + hint);
  }
  if (detail.find("403") != std::string::npos) {
    throw Error(ErrorCode::kPermissionDenied, head + "the server denied access (" + detail + ")");
  }
  throw Error::unavailable(head + detail);
}

}  // namespace fedtrack
