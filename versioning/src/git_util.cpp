#include "git_util.h"

#include <mutex>

#include "fedtrack/core/error.h"

namespace fedtrack {

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

void git_check(int rc, const std::string& what) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  throw Error::unavailable(what + ": " + (e && e->message ? e->message : "libgit2 error"));
}

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

GitRepo::GitRepo(const std::string& dir, bool search) {
  ensure_libgit2();
  if (git_repository_open_ext(&repo_, dir.c_str(), search ? 0 : GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    repo_ = nullptr;
    throw Error::not_found("no git repository at " + dir);
  }
}

GitRepo::~GitRepo() { git_repository_free(repo_); }

std::string GitRepo::commit_of(const std::string& rev) const {
  GitObject object;
  if (git_revparse_single(object.out(), repo_, rev.c_str()) < 0) {
    throw Error::not_found("unknown revision '" + rev + "'");
  }
  GitObject peeled;
  if (git_object_peel(peeled.out(), object.get(), GIT_OBJECT_COMMIT) < 0) {
    throw Error::not_found("revision '" + rev + "' does not name a commit");
  }
  return oid_hex(*git_object_id(peeled.get()));
}

GitSignature GitRepo::signature(const std::string& author) const { return signature_for(repo_, author); }

GitSignature signature_for(git_repository* repo, const std::string& author) {
  GitSignature sig;
  if (git_signature_default(sig.out(), repo) == 0) return sig;
  const std::string who = author.empty() ? "fedtrack <fedtrack@localhost>" : author;
  const auto lt = who.find('<'), gt = who.rfind('>');
  if (lt == std::string::npos || gt == std::string::npos || gt < lt) {
    throw Error::invalid_argument("versioning.author must look like 'Name <email>', got '" + author + "'");
  }
  std::string name = who.substr(0, lt);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  git_check(git_signature_now(sig.out(), name.c_str(), who.substr(lt + 1, gt - lt - 1).c_str()), "git signature");
  return sig;
}

std::optional<std::string> git_blob_at(git_repository* repo, git_commit* commit, const std::string& path) {
  GitTree tree;
  git_check(git_commit_tree(tree.out(), commit), "git tree");
  GitTreeEntry entry;
  if (git_tree_entry_bypath(entry.out(), tree.get(), path.c_str()) < 0) return std::nullopt;
  GitBlob blob;
  if (git_blob_lookup(blob.out(), repo, git_tree_entry_id(entry.get())) < 0) return std::nullopt;
  return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                     static_cast<std::size_t>(git_blob_rawsize(blob.get())));
}

}  // namespace fedtrack
