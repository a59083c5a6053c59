// Pushing a model repository's round commits and tags to `origin`, with the
// credentials GitRemoteAuth finds (git_credentials.h). Private to versioning/.
//
// push_branch_and_tags: pushes HEAD's branch, then every local tag matching
// `tag_glob` that points at a commit on the branch and that origin does not
// have yet — so a round whose push failed (refused credentials, network) is
// pushed by the next push into the repository (a later round or a later
// run), commit and tag.
//
// When origin's branch moved on (another clone pushed first), it fetches
// that branch and rebases the local commits onto it, once, when (a) every
// local commit not on origin is a fedtrack round commit (it carries the
// fedtrack-job trailer) and (b) the commits origin gained change none of the
// paths those round commits change. Rebased commits keep their author,
// committer, message and trailers; their tags are moved to the new commits
// (they were never pushed: tags follow the branch); the work tree and index
// are checked out to the new head. Otherwise nothing changes and it is
// Error(kFailedPrecondition) naming the commit and the path both sides
// changed. A second rejection after the rebase (yet another writer) is
// Error(kUnavailable): run again.
//
// Errors name the remote without its user info (GitRemoteAuth::name()):
// refused credentials or host key kUnauthenticated, a 403
// kPermissionDenied, anything else kUnavailable.
#pragma once

#include <git2.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fedtrack {

struct PushResult {
  std::string head;                           // the branch head origin has now (full sha)
  std::map<std::string, std::string> rebased;  // old sha -> new sha of each rebased commit
  std::vector<std::string> tags;               // tags pushed (short names)
};

PushResult push_branch_and_tags(git_repository* repo, const std::string& tag_glob,
                                const std::function<void(const std::string&)>& log);

// Pushes the given tags (short names) that origin lacks; a tag origin has
// under the same name on another commit (or made elsewhere) is
// Error(kFailedPrecondition), never skipped silently. Returns false when
// the repository has no remote `origin`.
bool push_tags_to_origin(git_repository* repo, const std::vector<std::string>& tags);

}  // namespace fedtrack
