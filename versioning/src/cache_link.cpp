#include "cache_link.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  const std::string message = what + " " + path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM || err == EROFS) throw Error::permission_denied(message);
  throw Error::unavailable(message);
}

void fsync_folder_of(const std::string& path) {
  const fs::path p(path);
  const std::string folder = p.has_parent_path() ? p.parent_path().string() : ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// A reflink of `object` at `tmp`, fsynced; false (nothing left) when the
// file system cannot clone.
bool try_reflink(const std::string& object, const std::string& tmp, const LinkCalls& calls, std::string& why) {
  Fd from(::open(object.c_str(), O_RDONLY | O_CLOEXEC));
  if (from.fd < 0) {
    why = std::string("reflink: ") + std::strerror(errno);
    return false;
  }
  Fd to(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (to.fd < 0) {
    why = std::string("reflink: ") + std::strerror(errno);
    return false;
  }
  if (calls.clone(from.fd, to.fd) != 0 || ::fsync(to.fd) != 0) {
    const int err = errno;
    why = std::string("reflink: ") + std::strerror(err);
    ::unlink(tmp.c_str());
    errno = err;
    return false;
  }
  return true;
}

// File systems (by device) where the system's clone call said it cannot
// clone: later rounds skip straight to the next kind instead of creating and
// removing a temporary each time.
class NoCloneDevices {
 public:
  bool has(dev_t dev) {
    std::lock_guard<std::mutex> lock(mutex_);
    return devices_.count(dev) > 0;
  }
  void add(dev_t dev) {
    std::lock_guard<std::mutex> lock(mutex_);
    devices_.insert(dev);
  }

 private:
  std::mutex mutex_;
  std::set<dev_t> devices_;
};

NoCloneDevices& no_clone_devices() {
  static NoCloneDevices devices;
  return devices;
}

bool cannot_clone(int err) {
  // Not EXDEV: that says the two files are on different devices.
  return err == EOPNOTSUPP || err == ENOTTY || err == EINVAL || err == ENOSYS;
}

}  // namespace

const char* cache_link_name(CacheLink kind) {
  switch (kind) {
    case CacheLink::kReflink: return "reflink";
    case CacheLink::kHardlink: return "hardlink";
    case CacheLink::kCopy: return "copy";
  }
  return "unknown";
}

std::vector<CacheLink> cache_links_from(const DvcConfig& config, const std::string& where) {
  const auto section = config.find("cache");
  if (section == config.end() || !section->second.count("type")) {
    return {CacheLink::kReflink, CacheLink::kHardlink, CacheLink::kCopy};
  }
  const std::string& text = section->second.at("type");
  std::vector<CacheLink> kinds;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    std::string kind = text.substr(at, end - at);
    while (!kind.empty() && std::isspace(static_cast<unsigned char>(kind.front()))) kind.erase(kind.begin());
    while (!kind.empty() && std::isspace(static_cast<unsigned char>(kind.back()))) kind.pop_back();
    at = end + 1;
    if (kind.empty()) continue;
    if (kind == "reflink") {
      kinds.push_back(CacheLink::kReflink);
    } else if (kind == "hardlink") {
      kinds.push_back(CacheLink::kHardlink);
    } else if (kind == "copy") {
      kinds.push_back(CacheLink::kCopy);
    } else if (kind != "symlink") {
      throw Error::invalid_argument(where + ": cache.type '" + text + "' names '" + kind +
                                    "'; DVC knows reflink, hardlink, symlink and copy");
    }
  }
  if (kinds.empty()) {
    throw Error::invalid_argument(where + ": cache.type '" + text +
                                  "' lists no kind fedtrack makes (reflink, hardlink or copy; symlink is not made)");
  }
  return kinds;
}

const LinkCalls& system_link_calls() {
  static const LinkCalls calls{
      [](int from_fd, int to_fd) { return ::ioctl(to_fd, FICLONE, from_fd); },
      [](const char* from, const char* to) { return ::link(from, to); },
  };
  return calls;
}

std::string temporary_name_for(const std::string& path) {
  // Counted apart from write_file_atomically's names: start far above them.
  static std::atomic<unsigned long> counter{1UL << 31};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

CacheLink place_from_cache(const std::string& object, const std::string& target, std::string_view bytes,
                           const std::vector<CacheLink>& kinds, const LinkCalls& calls) {
  std::error_code ec;
  const fs::path folder = fs::path(target).parent_path();
  if (!folder.empty()) fs::create_directories(folder, ec);
  std::string tried;
  for (const CacheLink kind : kinds) {
    if (kind == CacheLink::kCopy) {
      write_file_atomically(target, bytes);
      return kind;
    }
    const std::string tmp = temporary_name_for(target);
    std::string why;
    bool made = false;
    if (kind == CacheLink::kReflink) {
      // Remembered only for the real system calls (tests inject their own).
      const bool system = &calls == &system_link_calls();
      struct stat st {};
      const bool known_device = system && ::stat(object.c_str(), &st) == 0;
      if (known_device && no_clone_devices().has(st.st_dev)) {
        tried += std::string(tried.empty() ? "" : "; ") + "reflink: not supported here";
        continue;
      }
      made = try_reflink(object, tmp, calls, why);
      if (!made && known_device && cannot_clone(errno)) no_clone_devices().add(st.st_dev);
    } else if (calls.link(object.c_str(), tmp.c_str()) == 0) {
      made = true;
    } else {
      why = std::string("hardlink: ") + std::strerror(errno);
    }
    if (!made) {
      tried += (tried.empty() ? "" : "; ") + why;
      continue;
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      fail("cannot rename onto", target, err);
    }
    fsync_folder_of(target);
    return kind;
  }
  throw Error::unavailable("cannot place " + target + " from the DVC cache object " + object +
                           " with cache.type's kinds (" + tried +
                           "); add copy to cache.type (dvc config cache.type reflink,hardlink,copy)");
}

VerifiedCopy copy_if_md5(int in, const std::string& from, const std::string& out, const std::string& md5) {
  std::error_code ec;
  const fs::path folder = fs::path(out).parent_path();
  if (!folder.empty()) fs::create_directories(folder, ec);
  const std::string tmp = temporary_name_for(out);
  Fd to(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (to.fd < 0) fail("cannot create", tmp, errno);
  struct stat st {};
  if (::fstat(in, &st) == 0 && st.st_size > 0) ::posix_fadvise(in, 0, st.st_size, POSIX_FADV_SEQUENTIAL);
  // Blocks small enough to stay in the CPU cache between the MD5 and the write.
  constexpr std::size_t kBlock = 1 << 20;
  std::unique_ptr<char[]> block(new char[kBlock]);
  Md5 digest;
  const auto abandon = [&](const std::string& what, const std::string& path, int err) {
    ::unlink(tmp.c_str());
    fail(what, path, err);
  };
  VerifiedCopy result;
  for (;;) {
    const ssize_t n = ::read(in, block.get(), kBlock);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      result.problem = "cannot read " + from + ": " + std::strerror(errno);
      ::unlink(tmp.c_str());
      return result;
    }
    digest.update(block.get(), static_cast<std::size_t>(n));
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(to.fd, block.get() + done, static_cast<std::size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        abandon("cannot write", tmp, errno);
      }
      done += w;
    }
  }
  const std::string actual = digest.hex();
  if (actual != md5) {
    ::unlink(tmp.c_str());
    result.problem = "md5 " + actual;
    return result;
  }
  if (::fsync(to.fd) != 0) abandon("cannot flush", tmp, errno);
  const int closed = ::close(to.fd);
  to.fd = -1;
  if (closed != 0) abandon("cannot flush", tmp, errno);
  if (::rename(tmp.c_str(), out.c_str()) != 0) abandon("cannot rename onto", out, errno);
  fsync_folder_of(out);
  result.copied = true;
  return result;
}

}  // namespace fedtrack
