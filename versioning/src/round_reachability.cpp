#include "fedtrack/versioning/round_reachability.h"

#include <git2.h>

#include <filesystem>

#include "dvc_format.h"
#include "dvc_remote_config.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/text.h"
#include "fedtrack/versioning/repository_url.h"
#include "git_util.h"
#include "s3_remote.h"

namespace fedtrack {

namespace fs = std::filesystem;

RoundReachability check_round_reachable(const std::string& repo_arg, const std::string& commit_sha,
                                        const std::string& path, const std::string& expected_md5) {
  ensure_libgit2();
  RoundReachability out;
  const std::string named = redact_uri(repo_arg);
  out.repo = local_repository(repo_arg);
  const std::string short_sha = commit_sha.substr(0, 12);
  GitOwned<git_repository, git_repository_free> repo;
  if (git_repository_open_ext(repo.out(), out.repo.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    throw Error::failed_precondition("the round's commit " + short_sha + " cannot be checked: no git repository at " +
                                     named + "; pass --repo with the model repository the job committed to");
  }
  git_oid oid;
  GitCommit commit;
  if (git_oid_fromstr(&oid, commit_sha.c_str()) < 0 || git_commit_lookup(commit.out(), repo.get(), &oid) < 0) {
    throw Error::failed_precondition(
        "the round's commit " + short_sha + " is not in the model repository " + named +
        (is_git_url(repo_arg) ? " (fetched into " + out.repo + ")" : "") +
        ": the job's push did not reach it, or this is another repository; pass --repo with the repository the "
        "job committed to (a git URL when the workspace is gone), or push the round commits (a run with "
        "versioning.push: true into the job's repository pushes what origin lacks)");
  }
  out.commit = oid_hex(oid);
  const std::string dvc_path = path + ".dvc";
  const auto text = git_blob_at(repo.get(), commit.get(), dvc_path);
  if (!text) {
    throw Error::failed_precondition("commit " + short_sha + " in " + named + " has no " + dvc_path +
                                     "; pass --path with the model the job versioned");
  }
  const DvcOutput output = parse_dvc_file(*text, dvc_path + "@" + short_sha);
  out.md5 = output.md5;
  if (!expected_md5.empty() && output.md5 != expected_md5) {
    throw Error::corruption("commit " + short_sha + " in " + named + " records md5 " + output.md5 + " in " + dvc_path +
                            " but the run records " + expected_md5);
  }

  const char* workdir = git_repository_workdir(repo.get());
  const fs::path top = workdir ? fs::path(workdir) : fs::path(out.repo);
  const std::string cached = object_path((top / ".dvc" / "cache").string(), output.md5, output.legacy());
  std::error_code ec;
  if (fs::is_regular_file(cached, ec) && (output.size == 0 || fs::file_size(cached, ec) == output.size)) {
    out.object = "the cache (" + cached + ")";
    return out;
  }
  const auto remote = revision_default_remote(top / ".dvc", git_blob_at(repo.get(), commit.get(), ".dvc/config").value_or(""));
  std::string where = "not in the cache (" + cached + ")";
  if (!remote) {
    where += " and the repository names no DVC remote at that commit";
  } else if (remote->is_s3()) {
    S3Remote s3(resolve_s3_settings(*remote, process_environment()));
    const auto size = s3.size_of(output.md5, output.legacy());
    if (size && (output.size == 0 || *size == output.size)) {
      out.object = remote->describe();
      return out;
    }
    where += size ? " and " + remote->describe() + " holds " + std::to_string(*size) + " bytes instead of " +
                        std::to_string(output.size)
                  : " nor in " + remote->describe() + " (s3://" + s3.settings().bucket + "/" +
                        s3.object_key(output.md5, output.legacy()) + ")";
  } else {
    const std::string file = object_path(remote->folder(top / ".dvc"), output.md5, output.legacy());
    if (fs::is_regular_file(file, ec) && (output.size == 0 || fs::file_size(file, ec) == output.size)) {
      out.object = remote->describe();
      return out;
    }
    where += " nor in " + remote->describe() + " (" + file + ")";
  }
  throw Error::failed_precondition("the model of commit " + short_sha + " in " + named + " (md5 " + output.md5 +
                                   ") cannot be fetched: " + where +
                                   "; the job's DVC push did not reach the remote, or the object was removed");
}

}  // namespace fedtrack
