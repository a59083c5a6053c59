// How a file leaves the DVC cache: the workspace file of a round, as DVC's
// `cache.type` links it, and a restored model, copied and verified in one
// pass. Private to versioning/; torch-free.
//
// Workspace files (place_from_cache): the first kind of `cache.type` that
// the file system allows, as DVC tries them —
//   reflink   a copy-on-write clone (btrfs, XFS, ...): an independent file
//             that costs no write of the bytes;
//   hardlink  the cache object itself under a second name: no write, but
//             the file is the object (mode 0444, read-only): writing into it
//             in place would change the cached model. fedtrack and DVC only
//             ever replace it (a new file renamed over it, unlink + write);
//             a user who wants to edit it runs `dvc unprotect` first;
//   copy      the bytes written again (fsynced).
// `symlink` is accepted in cache.type but never made (fedtrack's crash
// recovery only sweeps regular temporaries): it is skipped.
// Whatever the kind, the file is made under `<name>.tmp-<pid>-<n>` in the
// target's folder and renamed over the target, and the folder is fsynced,
// so a crash leaves the old file or the new one.
//
// Durability: the cache object was fsynced when it was written; a hard link
// needs only the rename and the folder's fsync, a reflink its own fsync
// (metadata only), a copy the fsync of its bytes.
//
// Thread-safe for distinct targets.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dvc_remote_config.h"

namespace fedtrack {

enum class CacheLink { kReflink, kHardlink, kCopy };

// "reflink", "hardlink", "copy".
const char* cache_link_name(CacheLink kind);

// The kinds `[cache] type` lists in `config` (comma-separated, in order;
// "symlink" skipped), or fedtrack's default when it is not set:
// reflink, hardlink, copy. Error(kInvalidArgument) naming `where` for a
// kind DVC does not know, or a list with nothing fedtrack can make.
std::vector<CacheLink> cache_links_from(const DvcConfig& config, const std::string& where);

// The system calls place_from_cache makes, a seam for tests that need a
// link to fail. Each returns 0 or -1 with errno set.
struct LinkCalls {
  std::function<int(int from_fd, int to_fd)> clone;            // ioctl(to_fd, FICLONE, from_fd)
  std::function<int(const char* from, const char* to)> link;   // link(2)
};
const LinkCalls& system_link_calls();

// Makes `target` the file of cache object `object` (which holds `bytes`)
// with the first kind in `kinds` that works; returns the kind made.
// Error(kUnavailable / kPermissionDenied) naming the target and every kind
// tried when none works.
CacheLink place_from_cache(const std::string& object, const std::string& target, std::string_view bytes,
                           const std::vector<CacheLink>& kinds, const LinkCalls& calls = system_link_calls());

// A temporary name beside `path` that crash recovery sweeps once this
// process is dead: `<path>.tmp-<pid>-<n>`.
std::string temporary_name_for(const std::string& path);

// Copies the open file `in` (named `from`; the caller opened it through
// open_regular_file and still owns it) to `out` in one pass, computing the
// MD5 of the bytes as they go by: when it is `md5` the copy is fsynced and
// renamed over `out` (folder fsynced). Otherwise, or when `in` cannot be
// read, nothing is left at `out`. A write error is thrown
// (Error(kUnavailable / kPermissionDenied) naming `out`).
struct VerifiedCopy {
  bool copied = false;
  std::string problem;  // when not: "md5 <found>" or "cannot read <from>: <why>"
};
VerifiedCopy copy_if_md5(int in, const std::string& from, const std::string& out, const std::string& md5);

}  // namespace fedtrack
