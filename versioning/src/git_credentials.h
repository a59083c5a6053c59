// GitRemoteAuth — how fedtrack authenticates to a git remote through libgit2,
// the way a CI job provides credentials. Private to versioning/.
//
// HTTPS: every `http.<url>.extraheader` (and plain `http.extraheader`) in
// the repository's git config (local, global, system) whose <url> is a
// prefix of the remote's URL goes with every request, as `actions/checkout`
// sets it (`AUTHORIZATION: basic <base64>`); an empty value clears the ones
// before it, as in git. Unless one of them is an Authorization header, the
// first of these goes with every request as Basic auth (no 401 round trip):
// user:password in the remote URL, else FEDTRACK_GIT_TOKEN as the password
// with FEDTRACK_GIT_USERNAME (else the URL's user, else `x-access-token`) as
// the user. A 401 after that is a refusal.
// SSH: the URL's user (else FEDTRACK_GIT_USERNAME, else $USER), then the
// key FEDTRACK_GIT_SSH_KEY names (passphrase FEDTRACK_GIT_SSH_PASSPHRASE,
// public key `<key>.pub` when present), else ssh-agent when SSH_AUTH_SOCK
// is set, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa. The server's host key
// must be in ~/.ssh/known_hosts (or the file FEDTRACK_GIT_SSH_KNOWN_HOSTS
// names), plain, hashed or `[host]:port` entries, checked here with
// libssh2's known-hosts reader like OpenSSH's StrictHostKeyChecking=yes: an
// unknown or changed key is refused (libgit2 1.5 alone accepts an unknown
// host when a certificate callback is set).
//
// Each credential is offered once; when the server refuses them all the
// push fails instead of looping. Secrets never reach an error message: the
// remote is always named through redact_uri and a header is named by its
// config key, never its value.
//
// Not thread-safe; one per connection (it records what happened).
#pragma once

#include <git2.h>

#include <string>
#include <utility>
#include <vector>

namespace fedtrack {

class GitRemoteAuth {
 public:
  // For pushing to / fetching from `remote` of `repo`.
  GitRemoteAuth(git_repository* repo, git_remote* remote);
  GitRemoteAuth(const GitRemoteAuth&) = delete;
  GitRemoteAuth& operator=(const GitRemoteAuth&) = delete;

  // Callbacks (credentials, host key check) with this object as payload;
  // the object must outlive the libgit2 call.
  git_remote_callbacks callbacks();
  // The extra headers (the strarray points into this object).
  git_strarray headers();

  // Refs the server refused in the last push ("refs/heads/main", its
  // status, e.g. "non-fast-forward"), from push_update_reference.
  const std::vector<std::pair<std::string, std::string>>& rejected() const { return rejected_; }

  // The remote, printable: "origin (https://host/repo.git)", without
  // user info or credential query values.
  const std::string& name() const { return printable_; }

  // Throws the Error that `rc` from a libgit2 remote call means, naming the
  // remote and `what`: kUnauthenticated (exit 6) when the server refused
  // the credentials or the host key was refused, kUnavailable otherwise.
  [[noreturn]] void fail(int rc, const std::string& what) const;

 private:
  static int credential_cb(git_credential** out, const char* url, const char* username_from_url,
                           unsigned int allowed, void* payload);
  static int push_status_cb(const char* refname, const char* status, void* payload);
  static int certificate_cb(git_cert* cert, int valid, const char* host, void* payload);
  int credential(git_credential** out, const char* username_from_url, unsigned int allowed);

  std::string url_;        // as configured (may hold a password; never printed)
  std::string printable_;  // "origin (redacted url)"
  bool ssh_ = false;
  std::vector<std::string> header_values_;
  std::vector<char*> header_ptrs_;
  // What the connection tried, for the error message.
  int offered_ = 0;                 // credentials handed to libgit2
  bool exhausted_ = false;          // nothing left to offer after a refusal
  std::vector<std::string> tried_;  // "token (FEDTRACK_GIT_TOKEN)", "key /path", ...
  std::vector<std::string> ssh_keys_;  // candidates not yet offered
  bool agent_tried_ = false;
  bool token_tried_ = false;
  std::string host_key_;  // "SHA256:..." of the SSH host key seen, if any
  std::string host_key_problem_;  // why the SSH host key was refused; "" = accepted / not checked
  std::string host_;  // host[:port] of the URL
  int port_ = 22;
  std::vector<std::pair<std::string, std::string>> rejected_;
};

}  // namespace fedtrack
