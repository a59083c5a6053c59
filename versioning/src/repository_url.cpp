#include "fedtrack/versioning/repository_url.h"

#include <git2.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"
#include "git_credentials.h"
#include "git_util.h"
#include "repository_lock.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

using Repo = GitOwned<git_repository, git_repository_free>;

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// One folder-name component: [A-Za-z0-9._-] kept, anything else '_'; never
// "", "." or "..".
std::string folder_component(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

struct UrlParts {
  std::string host;  // host, or host_port; "local" for file://
  std::string path;
  bool password = false;
};

UrlParts split_url(const std::string& url) {
  UrlParts parts;
  if (const auto sep = url.find("://"); sep != std::string::npos) {
    const std::size_t start = sep + 3;
    const std::size_t end = url.find_first_of("/?#", start);
    std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (const auto at = authority.rfind('@'); at != std::string::npos) {
      parts.password = authority.substr(0, at).find(':') != std::string::npos;
      authority = authority.substr(at + 1);
    }
    if (const auto colon = authority.rfind(':');
        colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
      authority = authority.substr(0, colon) + "_" + authority.substr(colon + 1);
    }
    parts.host = starts_with(url, "file://") && authority.empty() ? "local" : authority;
    parts.path = end == std::string::npos ? "" : url.substr(end, url.find_first_of("?#", end) - end);
  } else {  // user@host:path
    const auto colon = url.find(':');
    std::string host = url.substr(0, colon);
    if (const auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
    parts.host = host;
    parts.path = url.substr(colon + 1);
  }
  return parts;
}

void say(const std::function<void(const std::string&)>& log, const std::string& line) {
  if (log) log(line);
}

// Sets HEAD's branch to `target` and checks the work tree out (the cache
// is fedtrack's: tracked files are overwritten, untracked ones stay).
void move_branch_and_checkout(git_repository* repo, const std::string& branch, const git_oid& target,
                              const std::string& why) {
  GitReference ref;
  git_check(git_reference_create(ref.out(), repo, branch.c_str(), &target, 1, why.c_str()), "git update-ref " + branch);
  git_check(git_repository_set_head(repo, branch.c_str()), "git checkout " + branch);
  git_checkout_options checkout = GIT_CHECKOUT_OPTIONS_INIT;
  checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
  git_check(git_checkout_head(repo, &checkout), "git checkout " + branch);
}

}  // namespace

bool is_git_url(const std::string& repo) {
  for (const char* scheme : {"https://", "http://", "ssh://", "git+ssh://", "ssh+git://", "file://", "git://"}) {
    if (starts_with(repo, scheme)) return true;
  }
  // scp-like: a ':' before any '/', with something before it (git's rule).
  const auto colon = repo.find(':');
  return colon != std::string::npos && colon > 0 && repo.find('/') > colon && repo.find("://") == std::string::npos;
}

std::string repository_cache_folder(const std::string& url) {
  const UrlParts parts = split_url(url);
  if (parts.password) {
    throw Error::invalid_argument("model repository " + redact_uri(url) +
                                  ": the URL holds a password, which would be stored in the clone's git config; "
                                  "drop it from the URL and give it in FEDTRACK_GIT_TOKEN (user: "
                                  "FEDTRACK_GIT_USERNAME) instead");
  }
  fs::path folder = fs::path(folder_component(parts.host));
  bool any_path = false;
  for (std::size_t i = 0; i <= parts.path.size();) {
    const std::size_t next = std::min(parts.path.find('/', i), parts.path.size());
    const std::string segment = parts.path.substr(i, next - i);
    if (!segment.empty() && segment != "." && segment != "~") {
      folder /= folder_component(segment);
      any_path = true;
    }
    i = next + 1;
  }
  if (any_path && folder.filename().string().size() > 4 && folder.extension() == ".git") {
    folder.replace_extension();  // host/team/models, not models.git: it is a work tree
  }
  if (parts.host.empty() || !any_path) {
    throw Error::invalid_argument("model repository " + redact_uri(url) + ": not a git URL with a host and a path");
  }
  const char* configured = std::getenv("FEDTRACK_REPO_CACHE");
  const fs::path base = configured && *configured ? fs::path(configured) : fs::current_path() / ".fedtrack" / "repos";
  return (fs::absolute(base) / folder).lexically_normal().string();
}

std::string sync_repository_url(const std::string& url, double lock_wait_seconds,
                                const std::function<void(const std::string&)>& log) {
  ensure_libgit2();
  const std::string folder = repository_cache_folder(url);
  const std::string printable = redact_uri(url);
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error::unavailable("cannot create the cache folder " + folder + " for " + printable + ": " + ec.message());

  Repo repo;
  bool fresh = false;
  if (git_repository_open_ext(repo.out(), folder.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    git_repository_init_options init = GIT_REPOSITORY_INIT_OPTIONS_INIT;
    init.flags = GIT_REPOSITORY_INIT_MKPATH;
    init.initial_head = "main";
    git_check(git_repository_init_ext(repo.out(), folder.c_str(), &init), "git init " + folder);
    fresh = true;
  }
  const std::string git_dir = git_repository_commondir(repo.get());
  RepositoryLock lock(git_dir, std::chrono::milliseconds(static_cast<long long>(std::max(0.0, lock_wait_seconds) * 1000)));
  recover_git_dir(git_dir, folder, lock);

  GitRemote origin;
  if (git_remote_lookup(origin.out(), repo.get(), "origin") < 0) {
    git_check(git_remote_create(origin.out(), repo.get(), "origin", url.c_str()), "git remote add origin " + printable);
  } else if (std::string(git_remote_url(origin.get()) ? git_remote_url(origin.get()) : "") != url) {
    git_check(git_remote_set_url(repo.get(), "origin", url.c_str()), "git remote set-url origin " + printable);
    GitRemote reloaded;
    git_check(git_remote_lookup(reloaded.out(), repo.get(), "origin"), "git remote origin");
    std::swap(origin.p, reloaded.p);
  }

  // Fetch origin's branches and tags over one connection.
  GitRemoteAuth auth(repo.get(), origin.get());
  git_remote_callbacks callbacks = auth.callbacks();
  git_strarray headers = auth.headers();
  int rc = git_remote_connect(origin.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, &headers);
  if (rc < 0) auth.fail(rc, "git fetch from");
  std::string default_branch;
  git_buf buf = GIT_BUF_INIT;
  if (git_remote_default_branch(&buf, origin.get()) == 0 && buf.ptr) default_branch = buf.ptr;
  git_buf_dispose(&buf);
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  std::vector<std::string> branches;
  if (git_remote_ls(&heads, &count, origin.get()) == 0) {
    for (size_t i = 0; i < count; ++i) {
      if (starts_with(heads[i]->name, "refs/heads/")) branches.emplace_back(heads[i]->name);
    }
  }
  if (default_branch.empty() && branches.size() == 1) default_branch = branches.front();
  std::string branch_spec = "+refs/heads/*:refs/remotes/origin/*", tag_spec = "+refs/tags/*:refs/tags/*";
  char* specs[] = {branch_spec.data(), tag_spec.data()};
  git_strarray refspecs = {specs, 2};
  git_fetch_options fetch = GIT_FETCH_OPTIONS_INIT;
  fetch.callbacks = callbacks;
  fetch.custom_headers = headers;
  fetch.update_fetchhead = 0;  // FETCH_HEAD would record the URL
  fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  if (!branches.empty() || count > 0) {
    rc = git_remote_download(origin.get(), &refspecs, &fetch);
    if (rc < 0) {
      git_remote_disconnect(origin.get());
      auth.fail(rc, "git fetch from");
    }
    rc = git_remote_update_tips(origin.get(), &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "fedtrack: fetch");
    if (rc < 0) {
      git_remote_disconnect(origin.get());
      auth.fail(rc, "git fetch from");
    }
  }
  git_remote_disconnect(origin.get());

  // The local branch: origin's when there are no local commits or it is behind.
  GitReference head;
  const int head_rc = git_repository_head(head.out(), repo.get());
  std::string branch;
  if (head_rc == 0 && git_reference_is_branch(head.get())) {
    branch = git_reference_name(head.get());
  } else if (head_rc == GIT_EUNBORNBRANCH) {
    branch = !default_branch.empty() ? default_branch : "refs/heads/main";
    if (!fresh || branch != "refs/heads/main") git_check(git_repository_set_head(repo.get(), branch.c_str()), "git HEAD");
  } else {
    throw Error::failed_precondition("the cache " + folder + " of " + printable +
                                     " has a detached HEAD; remove the folder (it is a clone) and run again");
  }
  const std::string tracking = "refs/remotes/origin/" + branch.substr(std::string("refs/heads/").size());
  git_oid theirs;
  if (git_reference_name_to_id(&theirs, repo.get(), tracking.c_str()) < 0) {
    say(log, "versioning: " + printable + " has no " + branch + " yet; the first push creates it (cache " + folder + ")");
    return folder;
  }
  if (head_rc == GIT_EUNBORNBRANCH) {
    move_branch_and_checkout(repo.get(), branch, theirs, "fedtrack: clone " + printable);
    say(log, "versioning: cloned " + printable + " into " + folder + " (" + branch + " at " +
                 oid_hex(theirs).substr(0, 12) + ")");
    return folder;
  }
  const git_oid ours = *git_reference_target(head.get());
  if (git_oid_equal(&ours, &theirs) || git_graph_descendant_of(repo.get(), &ours, &theirs) == 1) return folder;
  if (git_graph_descendant_of(repo.get(), &theirs, &ours) == 1) {
    move_branch_and_checkout(repo.get(), branch, theirs, "fedtrack: fast-forward to " + printable);
    say(log, "versioning: fetched " + printable + " into " + folder + " (" + branch + " now at " +
                 oid_hex(theirs).substr(0, 12) + ")");
  }
  // Diverged: local round commits whose push failed; the next push rebases them.
  return folder;
}

std::string local_repository(const std::string& repo) { return is_git_url(repo) ? sync_repository_url(repo) : repo; }

}  // namespace fedtrack
