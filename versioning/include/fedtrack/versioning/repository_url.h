// A model repository named by a git URL (versioning.repo, --repo of
// promote / restore / history) instead of a folder: the repository lives on
// a git server, and each workspace works in a local clone of it, so CI runs
// in fresh workspaces extend one history.
//
// URLs: https://, http://, ssh://, git+ssh://, file://, and scp-like
// user@host:path. Anything else is a folder, as before.
//
// The clone is a cache: `<cache>/<host>[_<port>]/<path without .git>`
// (characters other than [A-Za-z0-9._-] become '_') where <cache> is
// FEDTRACK_REPO_CACHE, else `.fedtrack/repos` under the current directory.
// The folder name never holds user info (a URL with a password is refused
// outright: it would be stored in the clone's git config; give the token in
// FEDTRACK_GIT_TOKEN instead). A missing cache is created (git init +
// `origin` = the URL); then origin's branches and tags are fetched with the
// credentials git_push uses (git_credentials.h: FEDTRACK_GIT_TOKEN,
// http.<url>.extraheader, SSH key / agent), and the local branch is set to
// origin's when it has no commits of its own (fresh cache) or is behind it
// (fast-forward, work tree checked out). Local commits origin lacks (a push
// that failed) stay: the next push rebases them (git_push.h). An empty
// remote repository is fine: the first round's push creates its branch
// (`main` unless origin's HEAD names another).
//
// Errors name the URL without user info: refused credentials
// kUnauthenticated, unreachable kUnavailable (as for push).
// Not thread-safe; a second process syncing the same cache waits for the
// repository lock (repository_lock.h).
#pragma once

#include <functional>
#include <string>

namespace fedtrack {

// True for the URL forms above; false for a folder. As in git, a ':'
// before any '/' makes it scp-like (use ./a:b for such a folder).
bool is_git_url(const std::string& repo);

// The cache folder for `url` (see above), absolute. Error(kInvalidArgument)
// for a URL with a password in it, or with nothing to name a folder after.
std::string repository_cache_folder(const std::string& url);

// Makes the cache of `url` current (see above) and returns its folder.
std::string sync_repository_url(const std::string& url, double lock_wait_seconds = 10,
                                const std::function<void(const std::string&)>& log = {});

// `repo` when it is a folder; the synced cache folder when it is a URL.
std::string local_repository(const std::string& repo);

}  // namespace fedtrack
