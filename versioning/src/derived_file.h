// Writing a file of the model repository that is derived from what a round
// commit records (the DVCLive files: dvclive/metrics.json, params.yaml, the
// plots .tsv files): to a temporary name `<name>.tmp-<pid>-<n>` (what crash
// recovery sweeps up after a killed process) and renamed over the file, so
// a reader or a killed writer sees the old bytes or the new ones — but not
// fsynced. Their durable copy is the round's git commit, and the next round
// rebuilds them from the commit, never from the work tree; an fsync per file
// (one per metric, every round) cost more than the commit itself.
#pragma once

#include <string>
#include <string_view>

struct git_index;
struct git_repository;

namespace fedtrack {

// Error(kUnavailable / kPermissionDenied) naming the file when it cannot.
void write_derived_file(const std::string& path, std::string_view bytes);

// Stages `bytes`, just written to `root`/`rel` by write_derived_file, as
// `git add rel` would — the blob from memory, the entry with the file's stat
// data, so `git status` sees it clean — without git_index_add_bypath's
// attribute, ignore and symlink lookups along the path (a few hundred
// syscalls per file, more than the file itself).
void stage_derived_file(git_repository* repo, git_index* index, const std::string& root, const std::string& rel,
                        std::string_view bytes);

}  // namespace fedtrack
