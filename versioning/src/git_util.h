// libgit2 helpers private to versioning/: RAII handles, error mapping, and
// the commit identity rule (git config, else the given author, else fedtrack).
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <utility>

namespace fedtrack {

// Initializes libgit2 once per process.
void ensure_libgit2();

// Throws Error(kUnavailable) with libgit2's message when rc < 0.
void git_check(int rc, const std::string& what);

template <typename T, void (*Free)(T*)>
struct GitOwned {
  T* p = nullptr;
  GitOwned() = default;
  GitOwned(GitOwned&& other) noexcept : p(other.p) { other.p = nullptr; }
  GitOwned(const GitOwned&) = delete;
  GitOwned& operator=(const GitOwned&) = delete;
  ~GitOwned() {
    if (p) Free(p);
  }
  T** out() { return &p; }
  T* get() const { return p; }
};
using GitIndex = GitOwned<git_index, git_index_free>;
using GitTree = GitOwned<git_tree, git_tree_free>;
using GitCommit = GitOwned<git_commit, git_commit_free>;
using GitObject = GitOwned<git_object, git_object_free>;
using GitSignature = GitOwned<git_signature, git_signature_free>;
using GitTreeEntry = GitOwned<git_tree_entry, git_tree_entry_free>;
using GitBlob = GitOwned<git_blob, git_blob_free>;
using GitReference = GitOwned<git_reference, git_reference_free>;
using GitRemote = GitOwned<git_remote, git_remote_free>;

std::string oid_hex(const git_oid& oid);

// The bytes of `path` in the tree of `commit`, or nullopt when absent.
std::optional<std::string> git_blob_at(git_repository* repo, git_commit* commit, const std::string& path);

// The configured git identity of `repo`, else `author` ("Name <email>"),
// else "fedtrack <fedtrack@localhost>". Error(kInvalidArgument) for a
// malformed author.
GitOwned<git_signature, git_signature_free> signature_for(git_repository* repo, const std::string& author);

// An open repository.
class GitRepo {
 public:
  // Opens `dir` (searching upwards when `search`); Error(kNotFound) if none.
  explicit GitRepo(const std::string& dir, bool search = true);
  ~GitRepo();
  GitRepo(const GitRepo&) = delete;
  GitRepo& operator=(const GitRepo&) = delete;
  git_repository* get() const { return repo_; }

  // The commit a revision names (tags peeled). Error(kNotFound) naming it.
  std::string commit_of(const std::string& rev) const;

  // The configured git identity, else `author` ("Name <email>"), else
  // "fedtrack <fedtrack@localhost>".
  GitSignature signature(const std::string& author) const;

 private:
  git_repository* repo_ = nullptr;
};

}  // namespace fedtrack
