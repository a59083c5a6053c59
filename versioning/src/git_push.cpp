#include "git_push.h"

#include <algorithm>
#include <set>

#include "fedtrack/core/error.h"
#include "fedtrack/core/lineage.h"
#include "git_credentials.h"
#include "git_util.h"

namespace fedtrack {
namespace {

using GitRevwalk = GitOwned<git_revwalk, git_revwalk_free>;
using GitDiff = GitOwned<git_diff, git_diff_free>;
using GitTag = GitOwned<git_tag, git_tag_free>;

std::string short_sha(const git_oid& oid) { return oid_hex(oid).substr(0, 12); }

// Pushes `specs`; true when accepted, false when origin's branch is ahead
// (non-fast-forward); throws for anything else.
bool push_specs(git_repository* repo, git_remote* origin, const std::vector<std::string>& specs) {
  GitRemoteAuth auth(repo, origin);
  std::vector<char*> raw;
  std::vector<std::string> copy = specs;
  for (auto& s : copy) raw.push_back(s.data());
  git_strarray refspecs = {raw.data(), raw.size()};
  git_push_options options = GIT_PUSH_OPTIONS_INIT;
  options.callbacks = auth.callbacks();
  options.custom_headers = auth.headers();
  const int rc = git_remote_push(origin, &refspecs, &options);
  if (rc == GIT_ENONFASTFORWARD) return false;
  if (rc < 0) auth.fail(rc, "git push to");
  for (const auto& [ref, status] : auth.rejected()) {
    if (status.find("non-fast-forward") != std::string::npos || status.find("fetch first") != std::string::npos) {
      return false;
    }
    throw Error::unavailable("git push to " + auth.name() + ": the server rejected " + ref + " (" + status + ")");
  }
  return true;
}

// origin's refs (name -> oid), read over a push connection.
std::map<std::string, git_oid> remote_refs(git_repository* repo, git_remote* origin) {
  GitRemoteAuth auth(repo, origin);
  git_remote_callbacks callbacks = auth.callbacks();
  git_strarray headers = auth.headers();
  int rc = git_remote_connect(origin, GIT_DIRECTION_PUSH, &callbacks, nullptr, &headers);
  if (rc < 0) auth.fail(rc, "git push to");
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  rc = git_remote_ls(&heads, &count, origin);
  if (rc < 0) {
    git_remote_disconnect(origin);
    auth.fail(rc, "git ls-remote");
  }
  std::map<std::string, git_oid> out;
  for (size_t i = 0; i < count; ++i) out[heads[i]->name] = heads[i]->oid;
  git_remote_disconnect(origin);
  return out;
}

std::set<std::string> changed_paths(git_repository* repo, const git_oid& from, const git_oid& to) {
  GitCommit a, b;
  GitTree ta, tb;
  git_check(git_commit_lookup(a.out(), repo, &from), "git commit");
  git_check(git_commit_lookup(b.out(), repo, &to), "git commit");
  git_check(git_commit_tree(ta.out(), a.get()), "git tree");
  git_check(git_commit_tree(tb.out(), b.get()), "git tree");
  GitDiff diff;
  git_check(git_diff_tree_to_tree(diff.out(), repo, ta.get(), tb.get(), nullptr), "git diff");
  std::set<std::string> out;
  for (size_t i = 0; i < git_diff_num_deltas(diff.get()); ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    if (d->old_file.path) out.insert(d->old_file.path);
    if (d->new_file.path) out.insert(d->new_file.path);
  }
  return out;
}

// Commits reachable from `tip` but not from `hide`, oldest first.
std::vector<git_oid> commits_between(git_repository* repo, const git_oid& hide, const git_oid& tip) {
  GitRevwalk walk;
  git_check(git_revwalk_new(walk.out(), repo), "git revwalk");
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  git_check(git_revwalk_push(walk.get(), &tip), "git revwalk");
  git_check(git_revwalk_hide(walk.get(), &hide), "git revwalk");
  std::vector<git_oid> out;
  git_oid oid;
  while (git_revwalk_next(&oid, walk.get()) == 0) out.push_back(oid);
  return out;
}

std::string subject(git_commit* c) {
  const char* s = git_commit_summary(c);
  return s ? s : "";
}

// Fetches origin's `branch` into refs/remotes/origin/<name>; its oid.
git_oid fetch_branch(git_repository* repo, git_remote* origin, const std::string& branch) {
  const std::string name = branch.substr(std::string("refs/heads/").size());
  const std::string tracking = "refs/remotes/origin/" + name;
  std::string spec = "+" + branch + ":" + tracking;
  char* raw[] = {spec.data()};
  git_strarray refspecs = {raw, 1};
  GitRemoteAuth auth(repo, origin);
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.callbacks = auth.callbacks();
  options.custom_headers = auth.headers();
  options.update_fetchhead = 0;  // FETCH_HEAD would record the URL, user info and all
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  const int rc = git_remote_fetch(origin, &refspecs, &options, "fedtrack: fetch before rebasing round commits");
  if (rc < 0) auth.fail(rc, "git fetch from");
  git_oid oid;
  git_check(git_reference_name_to_id(&oid, repo, tracking.c_str()), "git fetch " + tracking);
  return oid;
}

// Rebases the local commits of `branch` onto `onto` (see the header);
// returns old -> new shas and moves the branch, the tags, index and work tree.
std::map<std::string, std::string> rebase_onto(git_repository* repo, const std::string& branch, const git_oid& local,
                                               const git_oid& onto, const std::string& remote_name,
                                               const std::function<void(const std::string&)>& log) {
  git_oid base;
  if (git_merge_base(&base, repo, &local, &onto) < 0) {
    throw Error::failed_precondition("cannot push " + branch + " to " + remote_name + ": it shares no history with " +
                                     "origin's " + branch + "; push it by hand");
  }
  const auto ours = commits_between(repo, onto, local);
  const auto theirs = commits_between(repo, local, onto);
  const std::set<std::string> our_paths = changed_paths(repo, base, local);
  for (const auto& oid : ours) {
    GitCommit c;
    git_check(git_commit_lookup(c.out(), repo, &oid), "git commit");
    if (git_commit_parentcount(c.get()) != 1 || Lineage::from_commit_message(git_commit_message(c.get())).job_id.empty()) {
      throw Error::failed_precondition(
          "cannot push " + branch + " to " + remote_name + ": origin's " + branch + " moved on and local commit " +
          short_sha(oid) + " (\"" + subject(c.get()) + "\") is not a fedtrack round commit, so fedtrack does not "
          "rebase it; integrate by hand (git pull --rebase origin) and run again");
    }
  }
  for (const auto& oid : theirs) {
    GitCommit c;
    git_check(git_commit_lookup(c.out(), repo, &oid), "git commit");
    if (git_commit_parentcount(c.get()) == 0) continue;
    git_oid parent = *git_commit_parent_id(c.get(), 0);
    for (const auto& path : changed_paths(repo, parent, oid)) {
      if (our_paths.count(path)) {
        throw Error::failed_precondition(
            "cannot push " + branch + " to " + remote_name + ": origin's commit " + short_sha(oid) + " (\"" +
            subject(c.get()) + "\") also changes " + path + ", which fedtrack's round commits write; nothing was "
            "rebased. The local round commits and tags stay; integrate by hand (git -C <repo> pull --rebase "
            "origin) and run again");
      }
    }
  }

  // New commits, one per local commit, on top of `onto`.
  std::map<std::string, std::string> rebased;
  git_oid parent_oid = onto;
  for (const auto& oid : ours) {
    GitCommit c, parent;
    git_check(git_commit_lookup(c.out(), repo, &oid), "git commit");
    git_check(git_commit_lookup(parent.out(), repo, &parent_oid), "git commit");
    GitIndex index;
    git_check(git_cherrypick_commit(index.out(), repo, c.get(), parent.get(), 0, nullptr), "git cherry-pick");
    if (git_index_has_conflicts(index.get())) {
      throw Error::failed_precondition("cannot rebase round commit " + short_sha(oid) + " onto origin's " + branch +
                                       ": conflicts; integrate by hand and run again");
    }
    git_oid tree_oid;
    git_check(git_index_write_tree_to(&tree_oid, index.get(), repo), "git write-tree");
    GitTree tree;
    git_check(git_tree_lookup(tree.out(), repo, &tree_oid), "git tree");
    const git_commit* parents[] = {parent.get()};
    git_oid fresh;
    git_check(git_commit_create(&fresh, repo, nullptr, git_commit_author(c.get()), git_commit_committer(c.get()),
                                git_commit_message_encoding(c.get()), git_commit_message(c.get()), tree.get(), 1,
                                parents),
              "git commit (rebase)");
    rebased[oid_hex(oid)] = oid_hex(fresh);
    parent_oid = fresh;
  }

  // Work tree and index to the new head, then the branch.
  GitObject head_obj;
  git_check(git_object_lookup(head_obj.out(), repo, &parent_oid, GIT_OBJECT_COMMIT), "git commit");
  git_checkout_options checkout = GIT_CHECKOUT_OPTIONS_INIT;
  checkout.checkout_strategy = GIT_CHECKOUT_SAFE;
  git_check(git_checkout_tree(repo, head_obj.get(), &checkout), "git checkout of the rebased head");
  GitReference ref, moved;
  git_check(git_reference_lookup(ref.out(), repo, branch.c_str()), "git " + branch);
  git_check(git_reference_set_target(moved.out(), ref.get(), &parent_oid, "fedtrack: rebase onto origin"),
            "git update-ref " + branch);

  // Tags that named a rebased commit now name its replacement.
  struct TagMove {
    std::string name;
    git_oid to;
  };
  std::vector<TagMove> moves;
  struct Scan {
    git_repository* repo;
    const std::map<std::string, std::string>* rebased;
    std::vector<TagMove>* moves;
  } scan{repo, &rebased, &moves};
  git_tag_foreach(
      repo,
      [](const char* name, git_oid* oid, void* payload) -> int {
        auto* s = static_cast<Scan*>(payload);
        GitObject obj, peeled;
        if (git_object_lookup(obj.out(), s->repo, oid, GIT_OBJECT_ANY) < 0) return 0;
        if (git_object_peel(peeled.out(), obj.get(), GIT_OBJECT_COMMIT) < 0) return 0;
        auto it = s->rebased->find(oid_hex(*git_object_id(peeled.get())));
        if (it == s->rebased->end()) return 0;
        git_oid to;
        git_oid_fromstr(&to, it->second.c_str());
        s->moves->push_back({name, to});
        return 0;
      },
      &scan);
  for (const auto& m : moves) {
    const std::string short_name = m.name.substr(std::string("refs/tags/").size());
    GitObject target;
    git_check(git_object_lookup(target.out(), repo, &m.to, GIT_OBJECT_COMMIT), "git commit");
    GitReference tag_ref;
    git_check(git_reference_lookup(tag_ref.out(), repo, m.name.c_str()), "git tag " + short_name);
    GitTag tag;
    git_oid out;
    if (git_tag_lookup(tag.out(), repo, git_reference_target(tag_ref.get())) == 0) {
      git_check(git_tag_create(&out, repo, short_name.c_str(), target.get(), git_tag_tagger(tag.get()),
                               git_tag_message(tag.get()), 1),
                "git tag " + short_name);
    } else {
      GitReference fresh;
      git_check(git_reference_create(fresh.out(), repo, m.name.c_str(), &m.to, 1, "fedtrack: rebase"),
                "git tag " + short_name);
    }
  }
  if (log) {
    log("versioning: origin's " + branch + " had " + std::to_string(theirs.size()) + " new commit(s) (last " +
        short_sha(onto) + "); rebased " + std::to_string(ours.size()) + " round commit(s) onto it (now " +
        short_sha(parent_oid) + ")");
  }
  return rebased;
}

// Whether two tag (or commit) objects name the same commit; false when
// `b` is not in this repository.
bool same_commit(git_repository* repo, const git_oid& a, const git_oid& b) {
  GitObject oa, ob, pa, pb;
  if (git_object_lookup(oa.out(), repo, &a, GIT_OBJECT_ANY) < 0 ||
      git_object_lookup(ob.out(), repo, &b, GIT_OBJECT_ANY) < 0) {
    return false;
  }
  if (git_object_peel(pa.out(), oa.get(), GIT_OBJECT_COMMIT) < 0 ||
      git_object_peel(pb.out(), ob.get(), GIT_OBJECT_COMMIT) < 0) {
    return false;
  }
  return git_oid_equal(git_object_id(pa.get()), git_object_id(pb.get())) != 0;
}

// Pushes the tags in `wanted` that origin lacks; returns those pushed.
std::vector<std::string> push_missing_tags(git_repository* repo, git_remote* origin,
                                           const std::vector<std::string>& wanted) {
  if (wanted.empty()) return {};
  const auto remote = remote_refs(repo, origin);
  std::vector<std::string> specs, pushed;
  for (const auto& tag : wanted) {
    const std::string ref = "refs/tags/" + tag;
    if (auto there = remote.find(ref); there != remote.end()) {
      // There already (tags are never moved once pushed) — unless origin's
      // tag of that name is another one: e.g. a promotion in another
      // workspace took the same GTO version meanwhile. Never skip that silently.
      git_oid local;
      git_check(git_reference_name_to_id(&local, repo, ref.c_str()), "git tag " + tag);
      if (!git_oid_equal(&local, &there->second) && !same_commit(repo, local, there->second)) {
        throw Error::failed_precondition(
            "tag " + tag + " exists on origin already and is not this repository's " + tag + " (origin's is " +
            short_sha(there->second) + ", made elsewhere: another writer, e.g. a promotion in another workspace, "
            "took that name meanwhile); nothing was pushed. Delete the local tag (git tag -d " + tag + "), fetch, "
            "and run again");
      }
      continue;
    }
    specs.push_back(ref + ":" + ref);
    pushed.push_back(tag);
  }
  if (specs.empty()) return {};
  if (!push_specs(repo, origin, specs)) {
    throw Error::failed_precondition("git push of tags to origin was rejected (a tag of the same name exists there)");
  }
  return pushed;
}

}  // namespace

PushResult push_branch_and_tags(git_repository* repo, const std::string& tag_glob,
                                const std::function<void(const std::string&)>& log) {
  GitRemote origin;
  if (git_remote_lookup(origin.out(), repo, "origin") < 0) {
    const char* workdir = git_repository_workdir(repo);
    throw Error::failed_precondition(std::string("versioning.push is true but the model repository ") +
                                     (workdir ? workdir : "") + " has no git remote 'origin'; add it (git remote add "
                                     "origin URL) or set versioning.push: false");
  }
  GitReference head;
  git_check(git_repository_head(head.out(), repo), "git HEAD");
  if (!git_reference_is_branch(head.get())) {
    throw Error::failed_precondition("versioning.push: the model repository's HEAD is detached; check out a branch");
  }
  const std::string branch = git_reference_name(head.get());
  const std::string spec = branch + ":" + branch;
  PushResult result;
  git_oid local = *git_reference_target(head.get());
  std::string remote_name;
  {
    GitRemoteAuth printable(repo, origin.get());
    remote_name = printable.name();
  }
  for (int attempt = 0;; ++attempt) {
    if (push_specs(repo, origin.get(), {spec})) break;
    if (attempt == 1) {
      throw Error::unavailable("git push to " + remote_name + ": " + branch + " was rejected again after rebasing "
                               "onto origin's (another writer pushed meanwhile); run again");
    }
    const git_oid onto = fetch_branch(repo, origin.get(), branch);
    if (git_graph_descendant_of(repo, &local, &onto) == 1 || git_oid_equal(&local, &onto)) continue;
    for (const auto& [from, to] : rebase_onto(repo, branch, local, onto, remote_name, log)) result.rebased[from] = to;
    git_check(git_reference_name_to_id(&local, repo, branch.c_str()), "git " + branch);
  }
  result.head = oid_hex(local);

  // The tags of the commits on the branch that origin has not got yet.
  git_strarray names = {nullptr, 0};
  git_check(git_tag_list_match(&names, tag_glob.c_str(), repo), "git tag list");
  std::vector<std::string> wanted;
  for (size_t i = 0; i < names.count; ++i) {
    GitObject obj, peeled;
    if (git_revparse_single(obj.out(), repo, (std::string("refs/tags/") + names.strings[i]).c_str()) < 0) continue;
    if (git_object_peel(peeled.out(), obj.get(), GIT_OBJECT_COMMIT) < 0) continue;
    const git_oid* c = git_object_id(peeled.get());
    if (git_oid_equal(c, &local) || git_graph_descendant_of(repo, &local, c) == 1) wanted.push_back(names.strings[i]);
  }
  git_strarray_dispose(&names);
  result.tags = push_missing_tags(repo, origin.get(), wanted);
  return result;
}

bool push_tags_to_origin(git_repository* repo, const std::vector<std::string>& tags) {
  GitRemote origin;
  if (git_remote_lookup(origin.out(), repo, "origin") < 0) return false;
  push_missing_tags(repo, origin.get(), tags);
  return true;
}

}  // namespace fedtrack
