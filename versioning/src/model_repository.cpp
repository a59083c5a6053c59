#include "fedtrack/versioning/model_repository.h"

#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "cache_link.h"
#include "dvc_format.h"
#include "dvc_remote_config.h"
#include "derived_file.h"
#include "dvclive_layout.h"
#include "fedtrack/versioning/dvc_artifacts.h"
#include "fedtrack/versioning/md5.h"
#include "git_push.h"
#include "s3_remote.h"
#include "git_util.h"
#include "repository_lock.h"
#include "fedtrack/core/text.h"
#include "fedtrack/versioning/repository_url.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

using Repo = GitOwned<git_repository, git_repository_free>;
using Index = GitIndex;
using Tree = GitTree;
using Commit = GitCommit;
using Object = GitObject;
using Signature = GitSignature;
using TreeEntry = GitTreeEntry;
using Blob = GitBlob;
using Reference = GitReference;
using Remote = GitRemote;

void check(int rc, const std::string& what) { git_check(rc, what); }

// A file of the model repository (or its cache) fedtrack reads: anything
// but a regular file there is corruption, named.
std::string read_repo_file(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) throw;
    throw Error::corruption(std::string(e.what()) + ", in the model repository; move it away");
  }
}

std::optional<std::string> blob_at(git_repository* repo, git_commit* commit, const std::string& path) {
  return git_blob_at(repo, commit, path);
}

// Copies `bytes` (whose md5 is `md5`) into the object file `path`
// read-only (0444), through a temporary name. An object already there is
// kept when it holds those bytes and replaced when it does not (bit rot);
// anything but a regular file there is Error(kCorruption) naming it.
void write_object(const std::string& path, const std::string& bytes, const std::string& md5) {
  remove_dead_temporaries(fs::path(path).parent_path().string());  // a killed writer's half object
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      throw Error::corruption("DVC object " + path + " is not a regular file (" + file_type_name(st.st_mode) +
                              "); move it away and run again");
    }
    if (static_cast<std::size_t>(st.st_size) == bytes.size() && md5_hex(read_repo_file(path)) == md5) return;
  }
  write_file_atomically(path, bytes);
  ::chmod(path.c_str(), 0444);
}

std::string sanitize_ref(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '-';
  while (out.find("..") != std::string::npos) out.replace(out.find(".."), 2, "-.");
  if (out.empty() || out.front() == '.') out = "job" + out;
  return out;
}

// A DVC artifact name (lowercase letters, digits, '-') from a file name.
std::string artifact_name(const std::string& from) {
  std::string artifact = sanitize_ref(from);
  std::transform(artifact.begin(), artifact.end(), artifact.begin(), [](unsigned char c) {
    return c == '_' || c == '.' ? '-' : static_cast<char>(std::tolower(c));
  });
  return artifact;
}

// A repository-relative path fedtrack may write a tracked file to.
bool is_inside_path(const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || path.find("..") != std::string::npos) return false;
  const std::string first = *fs::path(path).lexically_normal().begin();
  return first != ".dvc" && first != ".git" && first != "." && path.back() != '/';
}

// A round output's artifact name: the model's artifact and what its file
// name adds to the model's stem (global.onnx beside global.pt: NAME-onnx).
std::string output_artifact_name(const std::string& artifact, const std::string& model_stem, const std::string& file) {
  const std::string rest = file.rfind(model_stem + ".", 0) == 0 ? file.substr(model_stem.size() + 1) : file;
  return artifact + "-" + artifact_name(rest);
}

// What the job's previous round committed under the DVCLive folder: the
// commit its tag names (none for round 1, or when that round was never
// committed) and the metric .tsv files in it.
struct PreviousRound {
  Commit commit;
  std::vector<std::string> plots;
};

PreviousRound previous_round(git_repository* repo, const std::string& tag) {
  PreviousRound out;
  Object peeled;
  Reference ref;
  if (git_reference_lookup(ref.out(), repo, ("refs/tags/" + tag).c_str()) != 0 ||
      git_reference_peel(peeled.out(), ref.get(), GIT_OBJECT_COMMIT) != 0 ||
      git_commit_lookup(out.commit.out(), repo, git_object_id(peeled.get())) != 0) {
    return out;
  }
  Tree tree, plots;
  TreeEntry entry;
  if (git_commit_tree(tree.out(), out.commit.get()) != 0 ||
      git_tree_entry_bypath(entry.out(), tree.get(), kDvclivePlotsDir) != 0 ||
      git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE ||
      git_tree_lookup(plots.out(), repo, git_tree_entry_id(entry.get())) != 0) {
    return out;
  }
  for (std::size_t i = 0; i < git_tree_entrycount(plots.get()); ++i) {
    out.plots.push_back(std::string(kDvclivePlotsDir) + "/" + git_tree_entry_name(git_tree_entry_byindex(plots.get(), i)));
  }
  return out;
}

std::string fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// Replaces files atomically one by one, remembering what each held, so a
// failure part-way can put every one of them back. A large file (the model)
// is remembered as a hard link to its old inode (a `.tmp-<pid>-<n>` name,
// removed once the round is committed, swept by crash recovery otherwise)
// rather than read back into memory.
class FileUndo {
 public:
  FileUndo() = default;
  FileUndo(const FileUndo&) = delete;
  FileUndo& operator=(const FileUndo&) = delete;
  ~FileUndo() {  // committed: the old inodes are no longer needed
    for (const auto& s : saved_) {
      if (s.kept) ::unlink(s.kept->c_str());
    }
  }
  // `derived`: a file the commit is the durable copy of (derived_file.h).
  void write(const std::string& path, const std::string& bytes, bool derived = false) {
    std::optional<std::string> before;
    if (fs::is_regular_file(path)) before = read_repo_file(path);
    if (before && *before == bytes) return;
    saved_.push_back({path, before, std::nullopt});
    if (derived) {
      write_derived_file(path, bytes);
    } else {
      write_file_atomically(path, bytes);
    }
  }
  // `path` becomes the file of cache object `object` (holding `bytes`), see
  // place_from_cache; nothing is done when it already is that object.
  void place(const std::string& path, const std::string& object, const std::string& bytes,
             const std::vector<CacheLink>& kinds) {
    struct stat old {}, obj {};
    const bool exists = ::lstat(path.c_str(), &old) == 0;
    if (exists && S_ISREG(old.st_mode) && ::stat(object.c_str(), &obj) == 0 && old.st_dev == obj.st_dev &&
        old.st_ino == obj.st_ino) {
      return;
    }
    Saved saved{path, std::nullopt, std::nullopt};
    if (exists && S_ISREG(old.st_mode)) {
      const std::string kept = temporary_name_for(path);
      if (::link(path.c_str(), kept.c_str()) == 0) {
        saved.kept = kept;
      } else {
        saved.bytes = read_repo_file(path);  // a file system without hard links
      }
    }
    saved_.push_back(saved);
    place_from_cache(object, path, bytes, kinds);
  }
  void remove(const std::string& path) {
    if (!fs::is_regular_file(path)) return;
    saved_.push_back({path, read_repo_file(path), std::nullopt});
    fs::remove(path);
  }
  // Restores every file written, newest first; best effort.
  void rollback() noexcept {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      try {
        if (it->kept) {
          ::rename(it->kept->c_str(), it->path.c_str());
        } else if (it->bytes) {
          write_file_atomically(it->path, *it->bytes);
        } else {
          std::error_code ec;
          fs::remove(it->path, ec);
        }
      } catch (...) {
      }
    }
    saved_.clear();
  }

 private:
  struct Saved {
    std::string path;
    std::optional<std::string> bytes;  // what it held, or
    std::optional<std::string> kept;   // a hard link to what it held; neither: it did not exist
  };
  std::vector<Saved> saved_;
};

// Puts the index back to HEAD's tree (or empty before the first commit), so a
// failed round leaves nothing staged.
void reset_index_to_head(git_repository* repo) noexcept {
  Index index;
  if (git_repository_index(index.out(), repo) < 0 || git_index_read(index.get(), 1) < 0) return;
  git_oid head;
  if (git_reference_name_to_id(&head, repo, "HEAD") == 0) {
    Commit commit;
    Tree tree;
    if (git_commit_lookup(commit.out(), repo, &head) == 0 && git_commit_tree(tree.out(), commit.get()) == 0) {
      git_index_read_tree(index.get(), tree.get());
    }
  } else {
    git_index_clear(index.get());
  }
  git_index_write(index.get());
}

}  // namespace

struct ModelRepository::Git {
  Repo repo;
  std::string git_dir;  // where the repository lock lives
};

namespace {

std::chrono::milliseconds lock_wait(const VersioningOptions& o) {
  return std::chrono::milliseconds(static_cast<long long>(std::max(0.0, o.lock_wait_seconds) * 1000));
}

// After taking the repository lock: what a killed fedtrack process left.
void recover(const RepositoryLock& lock, const std::string& git_dir, const fs::path& top,
             const VersioningOptions& options) {
  std::vector<std::string> removed = recover_git_dir(git_dir, top.string(), lock);
  auto sweep = [&](const fs::path& folder) {
    for (auto& f : remove_dead_temporaries(folder.string())) removed.push_back(std::move(f));
  };
  sweep(top);
  sweep(top / ".dvc");
  sweep(top / "dvclive");
  sweep(top / kDvclivePlotsDir);
  sweep((top / options.path).parent_path());
  std::error_code ec;
  const fs::path cache = top / ".dvc" / "cache" / "files" / "md5";
  for (auto it = fs::directory_iterator(cache, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) sweep(it->path());
  }
  if (removed.empty() || !options.log) return;
  std::string line = "versioning: removed " + std::to_string(removed.size()) +
                     " file(s) a killed fedtrack process left in " + top.string();
  if (lock.stale()) line += " (pid " + std::to_string(lock.stale()->pid) + ", since " + lock.stale()->since + ")";
  line += ":";
  for (const auto& f : removed) line += " " + fs::relative(f, top, ec).string();
  options.log(line);
}

// The remote each round's object goes to: versioning.remote (an s3:// url,
// with the settings its .dvc/config section has, or a folder), else the
// repository's default remote as `dvc push` finds it; nullopt for none.
DvcRemote push_remote(const VersioningOptions& options, const std::string& root) {
  const fs::path dvc = fs::path(root) / ".dvc";
  if (options.remote.rfind("s3://", 0) == 0) return dvc_remote_for_url(read_dvc_config(dvc), options.remote, "fedtrack");
  DvcRemote local;
  local.name = "fedtrack";
  local.url = fs::absolute(options.remote).lexically_normal().string();
  return local;
}

std::optional<DvcRemote> push_remote_or_none(const VersioningOptions& options, const std::string& root) {
  if (options.remote.empty()) return default_dvc_remote(read_dvc_config(fs::path(root) / ".dvc"));
  return push_remote(options, root);
}

}  // namespace

ModelRepository::ModelRepository(VersioningOptions options) : options_(std::move(options)), git_(std::make_unique<Git>()) {
  ensure_libgit2();
  if (options_.path.empty() || fs::path(options_.path).is_absolute() ||
      options_.path.find("..") != std::string::npos) {
    throw Error::invalid_argument("versioning.path must be relative to the repository root, got '" + options_.path + "'");
  }
  if (!options_.artifact.empty() && !is_dvc_artifact_name(options_.artifact)) {
    throw Error::invalid_argument("versioning.artifact '" + options_.artifact +
                                  "' is not a DVC artifact name: letters, digits, '-' and '_', starting and ending "
                                  "with a letter or digit, at most 100 characters");
  }
  if (is_git_url(options_.repo)) {
    url_ = options_.repo;
    options_.repo = sync_repository_url(url_, options_.lock_wait_seconds, options_.log);
    options_.push = true;  // the cache is only a copy: every round goes to the URL
  }
  std::error_code ec;
  fs::create_directories(options_.repo, ec);
  // The lock lives in the git dir, so a repository killed half-way through
  // `git init` is finished under it too.
  Repo opened;
  const bool existed =
      git_repository_open_ext(opened.out(), options_.repo.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) == 0;
  git_->git_dir = existed ? git_repository_commondir(opened.get()) : (fs::path(options_.repo) / ".git").string();
  if (!existed) fs::create_directories(git_->git_dir, ec);
  RepositoryLock lock(git_->git_dir, lock_wait(options_));
  recover(lock, git_->git_dir, fs::path(options_.repo), options_);
  if (existed) {
    std::swap(git_->repo.p, opened.p);
  } else if (git_repository_open_ext(git_->repo.out(), options_.repo.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH,
                                     nullptr) < 0) {
    check(git_repository_init(git_->repo.out(), options_.repo.c_str(), 0), "git init " + options_.repo);
  }
  // The files `dvc init` makes, unless this is a DVC repository already;
  // .dvc/config last, so a repository killed before it is finished here.
  const fs::path dvc = fs::path(root()) / ".dvc";
  if (!fs::exists(dvc / "config")) {
    fs::create_directories(dvc, ec);
    if (!fs::exists(dvc / ".gitignore")) write_file_atomically((dvc / ".gitignore").string(), kDvcGitignore);
    if (!fs::exists(fs::path(root()) / ".dvcignore")) {
      write_file_atomically((fs::path(root()) / ".dvcignore").string(), kDvcignore);
    }
    write_file_atomically((dvc / "config").string(), "");
  }
  // A remote that cannot work (a scheme fedtrack cannot push to; for S3 bad
  // settings, no or refused credentials, no bucket, unreachable) fails
  // here, before round 1 and before its url is written to .dvc/config.
  if (const auto remote = push_remote_or_none(options_, root())) {
    if (remote->is_s3()) {
      S3Remote(resolve_s3_settings(*remote, process_environment())).probe();
    } else {
      remote->folder(dvc);
    }
  }
  if (!options_.remote.empty()) {
    // versioning.remote becomes the default remote, as `dvc remote add -d`
    // makes it: a section that already has this url keeps its name and
    // settings (endpointurl, region, ... set with `dvc remote modify`).
    const std::string config_path = (dvc / "config").string();
    const std::string before = read_repo_file(config_path);
    const DvcRemote remote = push_remote(options_, root());
    const auto parsed = parse_dvc_config(before);
    auto core = parsed.find("core");
    auto section = parsed.find("remote \"" + remote.name + "\"");
    const bool same = core != parsed.end() && core->second.count("remote") && core->second.at("remote") == remote.name &&
                      section != parsed.end() && section->second.count("url") && section->second.at("url") == remote.url;
    if (!same) write_file_atomically(config_path, dvc_config_with_remote(before, remote.name, remote.url));
  }
}

ModelRepository::~ModelRepository() = default;

std::string ModelRepository::root() const {
  const char* workdir = git_repository_workdir(git_->repo.get());
  if (!workdir) throw Error::failed_precondition(options_.repo + " is a bare git repository; need a work tree");
  std::string out = workdir;
  if (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::string ModelRepository::location() const { return url_.empty() ? root() : redact_uri(url_); }

std::string ModelRepository::tag_name(const std::string& job_id, int round) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "round-%03d", round);
  return "fedtrack/" + sanitize_ref(job_id) + "/" + buf;
}

RoundCommit ModelRepository::commit_round(const std::string& job_id, const std::string& job_name, int round,
                                          int total_rounds, const std::string& checkpoint_bytes,
                                          const Metrics& metrics,
                                          const Lineage& links, const std::vector<RoundOutput>& outputs) {
  git_repository* repo = git_->repo.get();
  // The extra outputs' paths, checked before anything is written.
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string& p = outputs[i].path;
    if (!is_inside_path(p) || (p.size() >= 4 && p.compare(p.size() - 4, 4, ".dvc") == 0)) {
      throw Error::invalid_argument("versioning: output path '" + p +
                                    "' must be a file path relative to the repository root (not in .dvc/ or .git/)");
    }
    if (p == options_.path) throw Error::invalid_argument("versioning: output path '" + p + "' is the model's own path");
    for (std::size_t j = 0; j < i; ++j) {
      if (outputs[j].path == p) throw Error::invalid_argument("versioning: output path '" + p + "' is given twice");
    }
  }
  const fs::path top(root());
  // One writer at a time; what a killed one left is cleaned up first.
  RepositoryLock lock(git_->git_dir, lock_wait(options_));
  recover(lock, git_->git_dir, top, options_);
  const fs::path model = top / options_.path;
  const fs::path folder = model.parent_path();
  const std::string name = model.filename().string();
  RoundCommit result;
  result.round = round;
  result.path = options_.path;
  result.md5 = md5_hex(checkpoint_bytes);
  result.size = checkpoint_bytes.size();
  for (const auto& o : outputs) result.outputs.push_back({o.path, md5_hex(o.bytes), o.bytes.size()});

  // 1. The objects in the cache (and remote) first: content-addressed, so an
  //    object no commit names yet is harmless.
  const std::string cache_root = (top / ".dvc" / "cache").string();
  const std::vector<CacheLink> link_kinds =
      cache_links_from(read_dvc_config(top / ".dvc"), (top / ".dvc" / "config").string());
  const auto remote = push_remote_or_none(options_, root());
  std::optional<S3Remote> s3;
  if (remote && remote->is_s3()) s3.emplace(resolve_s3_settings(*remote, process_environment()));
  const auto store = [&](const std::string& md5, const std::string& bytes) {
    write_object(object_path(cache_root, md5, false), bytes, md5);
    if (s3) {
      s3->push(md5, bytes);
    } else if (remote) {
      write_object(object_path(remote->folder(top / ".dvc"), md5, false), bytes, md5);
    }
  };
  store(result.md5, checkpoint_bytes);
  for (std::size_t i = 0; i < outputs.size(); ++i) store(result.outputs[i].md5, outputs[i].bytes);
  const std::string tag = tag_name(job_id, round);
  // A re-run round (a resumed job that stopped after this round's commit
  // but before its resume point was saved) reuses its commit and tag when
  // they hold the same model, so every round has exactly one of each.
  auto md5_of = [&](git_commit* c) -> std::optional<std::string> {
    const Lineage recorded = Lineage::from_commit_message(git_commit_message(c));
    if (recorded.job_id != job_id || recorded.round != round || recorded.md5.empty()) return std::nullopt;
    return recorded.md5;
  };
  std::optional<git_oid> reuse;
  bool tagged = false;
  Reference existing;
  if (git_reference_lookup(existing.out(), repo, ("refs/tags/" + tag).c_str()) == 0) {
    Object peeled;
    check(git_reference_peel(peeled.out(), existing.get(), GIT_OBJECT_COMMIT), "git tag " + tag);
    git_commit* tagged_commit = reinterpret_cast<git_commit*>(peeled.get());
    const std::string sha = oid_hex(*git_object_id(peeled.get())).substr(0, 12);
    const auto recorded = md5_of(tagged_commit);
    std::optional<std::string> dvc_md5;
    if (const auto text = blob_at(repo, tagged_commit, options_.path + ".dvc")) {
      try {
        dvc_md5 = parse_dvc_file(*text, options_.path + ".dvc@" + tag).md5;
      } catch (const Error&) {
      }
    }
    const std::string where = "tag " + tag + " (commit " + sha + ") in " + top.string();
    if (!recorded || !dvc_md5) {
      throw Error::corruption(where + " is not a round commit of job " + job_id + " for round " +
                              std::to_string(round) + ": it has " +
                              (recorded ? "no readable " + options_.path + ".dvc" : std::string("no md5 trailer")) +
                              "; the tag was moved or the repository was changed by hand. Point the tag back at the "
                              "round's commit, or delete it (git tag -d " + tag + ") to record the round again");
    }
    if (*recorded != *dvc_md5) {
      throw Error::corruption(where + " is corrupt: its commit message records md5 " + *recorded + " but its " +
                              options_.path + ".dvc says " + *dvc_md5 + "; repair or delete the tag (git tag -d " +
                              tag + ") before recording round " + std::to_string(round) + " again");
    }
    if (*dvc_md5 != result.md5) {
      throw Error::corruption(
          "round " + std::to_string(round) + " of job " + job_id + " is already recorded as " + where +
          " with model md5 " + *dvc_md5 + " (its " + options_.path + ".dvc), but this run produced md5 " +
          result.md5 + " for that round: the resume state and the model repository disagree (one is corrupt or "
          "was changed); nothing was committed. Check the recorded model with `fedtrack restore --rev " + tag +
          "`; to keep it, resume from a state file that matches it; to record this run instead, delete the tag "
          "(git tag -d " + tag + ")");
    }
    reuse = *git_object_id(peeled.get());
    tagged = true;
  } else {
    git_oid head_oid;
    Commit head_commit;
    if (git_reference_name_to_id(&head_oid, repo, "HEAD") == 0 &&
        git_commit_lookup(head_commit.out(), repo, &head_oid) == 0 && md5_of(head_commit.get()) == result.md5) {
      reuse = head_oid;  // committed, never tagged
    }
  }
  result.reused = reuse.has_value();

  git_oid commit_oid;
  if (reuse) {
    commit_oid = *reuse;
    result.commit = oid_hex(commit_oid);
  } else {
    // 2. The work tree: each file replaced atomically, all put back if any step
    //    up to the commit fails, so a failure leaves the previous state.
    FileUndo undo;
    const std::string artifact = options_.artifact.empty() ? artifact_name_for_job(job_name) : options_.artifact;
    std::vector<DvcArtifact> artifacts = {{artifact, options_.path}};
    for (const auto& o : outputs) {
      const std::string name_of = output_artifact_name(artifact, model.stem().string(), fs::path(o.path).filename().string());
      if (!is_dvc_artifact_name(name_of) ||
          std::any_of(artifacts.begin(), artifacts.end(), [&](const DvcArtifact& a) { return a.name == name_of; })) {
        throw Error::invalid_argument("versioning: output " + o.path + " would be DVC artifact '" + name_of +
                                      "', not a valid name or another output's; give it another file name");
      }
      artifacts.push_back({name_of, o.path});
    }
    // DVCLive's files, built on what this job's previous round committed:
    // a replayed or resumed round rewrites its rows, never adds them twice.
    const PreviousRound previous = previous_round(repo, tag_name(job_id, round - 1));
    const auto previous_file = [&](const std::string& rel) -> std::optional<std::string> {
      if (!previous.commit.get()) return std::nullopt;
      return blob_at(repo, previous.commit.get(), rel);
    };
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count();
    const DvcliveRound live = dvclive_round(metrics, round, options_.params, previous.plots, previous_file, now_ms);
    const std::string dvc_yaml = dvc_yaml_text({live.params, live.plots, artifacts});
    // What this round no longer has: another job's curves, its params, the
    // metrics file beside the model that fedtrack wrote before DVCLive's.
    std::vector<std::string> stale;
    {
      std::error_code ec;
      for (auto it = fs::directory_iterator(top / kDvclivePlotsDir, ec); !ec && it != fs::directory_iterator();
           it.increment(ec)) {
        const std::string rel = std::string(kDvclivePlotsDir) + "/" + it->path().filename().string();
        if (!live.files.count(rel)) stale.push_back(rel);
      }
      if (!live.params) stale.push_back(kDvcliveParamsFile);
      stale.push_back((fs::path(options_.path).parent_path() / (model.stem().string() + ".metrics.json")).string());
    }
    const fs::path dvc_yaml_path = top / "dvc.yaml";
    if (fs::exists(dvc_yaml_path) && read_repo_file(dvc_yaml_path.string()) != dvc_yaml &&
        read_repo_file(dvc_yaml_path.string()).find(options_.path) == std::string::npos) {
      throw Error::failed_precondition(dvc_yaml_path.string() + " exists and does not declare " + options_.path +
                                       "; fedtrack will not rewrite it");
    }
    // Outputs an earlier round declared and this one does not have (an
    // export turned off): their .dvc leaves this commit, so the revision
    // never names another round's file.
    std::vector<std::string> dropped;
    if (fs::exists(dvc_yaml_path)) {
      try {
        const YAML::Node declared = YAML::Load(read_repo_file(dvc_yaml_path.string()))["artifacts"];
        for (auto it = declared.begin(); declared.IsMap() && it != declared.end(); ++it) {
          const YAML::Node path_node = it->second["path"];
          if (!path_node || !path_node.IsScalar()) continue;
          const std::string p = path_node.Scalar();
          const bool kept = p == options_.path || std::any_of(outputs.begin(), outputs.end(),
                                                               [&](const RoundOutput& o) { return o.path == p; });
          if (!kept && is_inside_path(p) && fs::is_regular_file(top / (p + ".dvc"))) dropped.push_back(p);
        }
      } catch (const YAML::Exception&) {
      }
    }
    const fs::path gitignore = folder / ".gitignore";
    const std::string ignore_before = fs::exists(gitignore) ? read_repo_file(gitignore.string()) : "";
    // Every tracked file is ignored by git through the .gitignore beside it.
    std::map<std::string, std::string> ignores;  // folder .gitignore -> its new text
    ignores[gitignore.string()] = gitignore_with(ignore_before, "/" + name);
    for (const auto& o : outputs) {
      const fs::path file = top / o.path;
      const std::string ignore = (file.parent_path() / ".gitignore").string();
      if (!ignores.count(ignore)) ignores[ignore] = fs::exists(ignore) ? read_repo_file(ignore) : "";
      ignores[ignore] = gitignore_with(ignores[ignore], "/" + file.filename().string());
    }
    Commit parent;
    git_oid parent_oid;
    const bool has_parent = git_reference_name_to_id(&parent_oid, repo, "HEAD") == 0;
    Signature sig = signature_for(repo, options_.author);
    try {
      undo.write(model.string() + ".dvc", render_dvc_file({result.md5, result.size, "md5", name}));
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        const fs::path file = top / outputs[i].path;
        fs::create_directories(file.parent_path());
        undo.write(file.string() + ".dvc", render_dvc_file({result.outputs[i].md5, result.outputs[i].size, "md5",
                                                            file.filename().string()}));
      }
      for (const auto& [ignore, text] : ignores) undo.write(ignore, text);
      for (const auto& [rel, bytes] : live.files) {
        fs::create_directories((top / rel).parent_path());
        undo.write((top / rel).string(), bytes, true);
      }
      for (const auto& rel : stale) undo.remove((top / rel).string());
      undo.write(dvc_yaml_path.string(), dvc_yaml);
      // The work-tree files are links of their cache objects (cache.type).
      undo.place(model.string(), object_path(cache_root, result.md5, false), checkpoint_bytes, link_kinds);
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        undo.place((top / outputs[i].path).string(), object_path(cache_root, result.outputs[i].md5, false),
                   outputs[i].bytes, link_kinds);
      }
      for (const auto& p : dropped) {
        undo.remove((top / (p + ".dvc")).string());
        undo.remove((top / p).string());
      }
      // 3. One commit with libgit2.
      Index index;
      check(git_repository_index(index.out(), repo), "git index");
      check(git_index_read(index.get(), 1), "git index read");  // another writer may have committed since
      const std::string model_rel = options_.path;
      const std::string folder_rel = fs::path(model_rel).parent_path().string();
      std::vector<std::string> paths = {
          ".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", model_rel + ".dvc",
          (folder_rel.empty() ? "" : folder_rel + "/") + ".gitignore"};
      for (const auto& o : outputs) {
        const std::string o_folder = fs::path(o.path).parent_path().string();
        paths.push_back(o.path + ".dvc");
        paths.push_back((o_folder.empty() ? "" : o_folder + "/") + ".gitignore");
      }
      for (const auto& p : paths) {
        if (fs::exists(top / p)) check(git_index_add_bypath(index.get(), p.c_str()), "git add " + p);
      }
      for (const auto& [rel, bytes] : live.files) stage_derived_file(repo, index.get(), top.string(), rel, bytes);
      std::vector<std::string> removed = stale;
      for (const auto& p : dropped) removed.push_back(p + ".dvc");
      for (std::size_t i = 0; i < git_index_entrycount(index.get()); ++i) {  // what the work tree lost by hand
        const std::string p = git_index_get_byindex(index.get(), i)->path;
        if (p.rfind(std::string(kDvclivePlotsDir) + "/", 0) == 0 && !live.files.count(p)) removed.push_back(p);
      }
      for (const auto& p : removed) {
        if (git_index_get_bypath(index.get(), p.c_str(), 0) != nullptr) {
          check(git_index_remove_bypath(index.get(), p.c_str()), "git rm " + p);
        }
      }
      check(git_index_write(index.get()), "git index write");
      git_oid tree_oid;
      check(git_index_write_tree(&tree_oid, index.get()), "git write-tree");
      Tree tree;
      check(git_tree_lookup(tree.out(), repo, &tree_oid), "git tree");

      std::string message = job_name + " round " + std::to_string(round) + "/" + std::to_string(total_rounds);
      if (auto it = metrics.find("eval_accuracy"); it != metrics.end()) message += ": eval_accuracy=" + fixed4(it->second);
      Lineage trailers = links;
      trailers.job_id = job_id;
      trailers.round = round;
      trailers.md5 = result.md5;
      trailers.path = model_rel;
      message += "\n\n" + trailers.to_trailers();
      if (has_parent) check(git_commit_lookup(parent.out(), repo, &parent_oid), "git parent commit");
      const git_commit* parents[] = {parent.get()};
      check(git_commit_create(&commit_oid, repo, "HEAD", sig.get(), sig.get(), nullptr, message.c_str(), tree.get(),
                              has_parent ? 1 : 0, has_parent ? parents : nullptr),
            "git commit");
      result.commit = oid_hex(commit_oid);
    } catch (...) {
      undo.rollback();
      reset_index_to_head(repo);
      throw;
    }
  }

  Object target;
  check(git_object_lookup(target.out(), repo, &commit_oid, GIT_OBJECT_COMMIT), "git commit lookup");
  result.tag = tag;
  git_oid tag_oid;
  const std::string tag_message = job_name + " round " + std::to_string(round) + " (md5 " + result.md5 + ")\n";
  if (!tagged) {
    Signature tagger = signature_for(repo, options_.author);
    check(git_tag_create(&tag_oid, repo, result.tag.c_str(), target.get(), tagger.get(), tag_message.c_str(), 0),
          "git tag " + result.tag);
  }

  // 4. git push after the DVC object reached the DVC remote (step 1); see git_push.h.
  if (options_.push) {
    try {
      const PushResult pushed = push_branch_and_tags(repo, "fedtrack/*", options_.log);
      if (auto it = pushed.rebased.find(result.commit); it != pushed.rebased.end()) result.commit = it->second;
    } catch (const Error& e) {
      throw Error(e.code(), std::string(e.what()) + "; round " + std::to_string(round) + "'s commit " +
                                result.commit.substr(0, 12) + " and tag " + result.tag + " stay in " + top.string() +
                                ", and the next run into it with versioning.push: true pushes them");
    }
  }
  return result;
}

// --- restore -------------------------------------------------------------------------

RestoreResult restore_model(const std::string& repo_dir, const std::string& rev, const std::string& path,
                            const std::string& out) {
  ensure_libgit2();
  Repo repo;
  if (git_repository_open_ext(repo.out(), repo_dir.c_str(), 0, nullptr) < 0) {
    throw Error::not_found("no git repository at " + repo_dir);
  }
  Object object;
  if (git_revparse_single(object.out(), repo.get(), rev.c_str()) < 0) {
    throw Error::not_found("unknown revision '" + rev + "' in " + repo_dir);
  }
  Object peeled;
  if (git_object_peel(peeled.out(), object.get(), GIT_OBJECT_COMMIT) < 0) {
    throw Error::not_found("revision '" + rev + "' does not name a commit");
  }
  git_commit* commit = reinterpret_cast<git_commit*>(peeled.get());
  RestoreResult result;
  result.commit = oid_hex(*git_commit_id(commit));
  const std::string dvc_path = path + ".dvc";
  const auto dvc_text = blob_at(repo.get(), commit, dvc_path);
  if (!dvc_text) {
    throw Error::not_found("no " + dvc_path + " at revision '" + rev + "' (commit " + result.commit.substr(0, 12) + ")");
  }
  const DvcOutput output = parse_dvc_file(*dvc_text, dvc_path + "@" + rev);
  result.md5 = output.md5;
  result.size = output.size;

  const char* workdir = git_repository_workdir(repo.get());
  const fs::path top = workdir ? fs::path(workdir) : fs::path(repo_dir);
  const std::string committed_config = blob_at(repo.get(), commit, ".dvc/config").value_or("");
  // The cache first, then the default remote (a folder or S3).
  std::string problems;
  const auto accept = [&](const std::string& source, const std::string& where, const std::string& bytes) {
    const std::string actual = md5_hex(bytes);
    if (actual != output.md5) {
      problems += "; the " + source + " copy " + where + " is corrupt (md5 " + actual + ")";
      return false;
    }
    write_file_atomically(out, bytes);
    result.source = source;
    return true;
  };
  // A file copy: read, checked and written in one pass over the bytes.
  const auto from_file = [&](const std::string& source, const std::string& file) {
    int fd = -1;
    try {
      fd = open_regular_file(file);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) {
        problems += "; not in the " + source + " (" + file + ")";
      } else if (e.code() == ErrorCode::kInvalidArgument) {
        problems += "; the " + source + " copy is corrupt: " + e.what();
      } else {
        problems += "; the " + source + " copy " + file + " cannot be read: " + e.what();
      }
      return false;
    }
    VerifiedCopy copy;
    try {
      copy = copy_if_md5(fd, file, out, output.md5);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    if (!copy.copied) {
      if (copy.problem.rfind("md5 ", 0) == 0) {
        problems += "; the " + source + " copy " + file + " is corrupt (" + copy.problem + ")";
      } else {
        problems += "; the " + source + " copy " + file + " cannot be read: " + copy.problem;
      }
      return false;
    }
    result.source = source;
    return true;
  };
  if (from_file("cache", object_path((top / ".dvc" / "cache").string(), output.md5, output.legacy()))) return result;
  if (const auto remote = revision_default_remote(top / ".dvc", committed_config)) {
    if (remote->is_s3()) {
      S3Remote s3(resolve_s3_settings(*remote, process_environment()));
      const std::string key = s3.object_key(output.md5, output.legacy());
      const auto bytes = s3.fetch(output.md5, output.legacy(), output.size ? output.size : (8ULL << 30));
      if (!bytes) {
        problems += "; not in the remote (" + remote->describe() + ", s3://" + s3.settings().bucket + "/" + key + ")";
      } else if (accept("remote", remote->describe() + " s3://" + s3.settings().bucket + "/" + key, *bytes)) {
        return result;
      }
    } else if (from_file("remote", object_path(remote->folder(top / ".dvc"), output.md5, output.legacy()))) {
      return result;
    }
  }
  const bool corrupt = problems.find("corrupt") != std::string::npos;
  throw Error(corrupt ? ErrorCode::kCorruption : ErrorCode::kNotFound,
              "cannot restore " + path + " at '" + rev + "' (md5 " + output.md5 + ")" + problems);
}

std::vector<HistoryEntry> model_history(const std::string& repo_dir) {
  ensure_libgit2();
  Repo repo;
  if (git_repository_open_ext(repo.out(), repo_dir.c_str(), 0, nullptr) < 0) {
    throw Error::not_found("no git repository at " + repo_dir);
  }
  git_strarray tags = {nullptr, 0};
  check(git_tag_list_match(&tags, "fedtrack/*", repo.get()), "git tag list");
  std::vector<HistoryEntry> out;
  for (std::size_t i = 0; i < tags.count; ++i) {
    const std::string tag = tags.strings[i];
    Object object;
    if (git_revparse_single(object.out(), repo.get(), ("refs/tags/" + tag).c_str()) < 0) continue;
    Object peeled;
    if (git_object_peel(peeled.out(), object.get(), GIT_OBJECT_COMMIT) < 0) continue;
    git_commit* commit = reinterpret_cast<git_commit*>(peeled.get());
    HistoryEntry e;
    e.tag = tag;
    e.commit = oid_hex(*git_commit_id(commit));
    e.time = git_commit_time(commit);
    const Lineage recorded = Lineage::from_commit_message(git_commit_message(commit));
    e.job_id = recorded.job_id;
    e.round = recorded.round;
    e.md5 = recorded.md5;
    const std::string& path = recorded.path;
    // DVCLive's metrics file; a round committed before it has the metrics
    // file beside the model (with "round" for DVCLive's "step").
    auto text = blob_at(repo.get(), commit, kDvcliveMetricsFile);
    if (!text && !path.empty()) {
      const fs::path p(path);
      text = blob_at(repo.get(), commit, (p.parent_path() / (p.stem().string() + ".metrics.json")).string());
    }
    if (text) {
      try {
        const nlohmann::json metrics = nlohmann::json::parse(*text);  // must outlive items()
        for (const auto& [k, v] : metrics.items()) {
          if (v.is_number() && k != "round" && k != "step") e.metrics[k] = v.get<double>();
        }
      } catch (const std::exception&) {
      }
    }
    out.push_back(std::move(e));
  }
  git_strarray_dispose(&tags);
  std::sort(out.begin(), out.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
    return a.time != b.time ? a.time < b.time : (a.job_id != b.job_id ? a.job_id < b.job_id : a.round < b.round);
  });
  return out;
}

std::optional<std::string> recorded_md5(const std::string& repo_dir, const std::string& rev, const std::string& path) {
  ensure_libgit2();
  Repo repo;
  if (git_repository_open_ext(repo.out(), repo_dir.c_str(), 0, nullptr) < 0) return std::nullopt;
  Object object;
  if (git_revparse_single(object.out(), repo.get(), rev.c_str()) < 0) return std::nullopt;
  Object peeled;
  if (git_object_peel(peeled.out(), object.get(), GIT_OBJECT_COMMIT) < 0) return std::nullopt;
  const auto text = blob_at(repo.get(), reinterpret_cast<git_commit*>(peeled.get()), path + ".dvc");
  if (!text) return std::nullopt;
  return parse_dvc_file(*text, path + ".dvc@" + rev).md5;
}

}  // namespace fedtrack
