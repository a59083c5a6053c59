#include "repository_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <thread>

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

long long mtime_ns(const struct stat& st) {
  return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

std::string hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

long long start_ticks_of(long pid) {
  std::error_code ec;
  const fs::path stat_path = "/proc/" + std::to_string(pid) + "/stat";
  const int fd = ::open(stat_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  const std::string text(buf, static_cast<std::size_t>(n));
  const auto paren = text.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::atoll(field.c_str());
  }
  return 0;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string read_fd(int fd) {
  std::string out;
  char buf[512];
  off_t at = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0 || out.size() > 4096) break;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return out;
}

// "key value" lines; unknown keys ignored.
LockOwner parse_owner(const std::string& text, long long* since_ns) {
  LockOwner owner;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "pid") owner.pid = std::atol(value.c_str());
    if (key == "host") owner.host = value;
    if (key == "since") owner.since = value;
    if (key == "start_ticks") owner.start_ticks = std::atoll(value.c_str());
    if (key == "since_ns" && since_ns) *since_ns = std::atoll(value.c_str());
  }
  return owner;
}

std::string describe(const LockOwner& owner) {
  if (owner.pid <= 0) return "another process";
  return "fedtrack pid " + std::to_string(owner.pid) + (owner.host.empty() ? "" : " on " + owner.host) +
         (owner.since.empty() ? "" : " since " + owner.since);
}

[[noreturn]] void fail_errno(const std::string& what, const std::string& path) {
  const int err = errno;
  const std::string message = what + " " + path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM || err == EROFS) throw Error::permission_denied(message);
  throw Error::unavailable(message);
}

bool is_git_lock(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".lock") == 0 && name != "fedtrack.lock";
}

bool is_libgit2_temporary(const std::string& name) {
  return name.rfind("tmp_object_git2_", 0) == 0 || name.rfind("_git2_", 0) == 0;
}

}  // namespace

RepositoryLock::RepositoryLock(const std::string& git_dir, std::chrono::milliseconds wait)
    : path_((fs::path(git_dir) / "fedtrack.lock").string()) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) fail_errno("cannot open the repository lock", path_);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string record = read_fd(fd);
      ::close(fd);
      if (err != EWOULDBLOCK) {
        errno = err;
        fail_errno("cannot lock", path_);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        const LockOwner owner = parse_owner(record, nullptr);
        throw Error::unavailable("repository busy (" +
                                 (owner.pid > 0 ? "pid " + std::to_string(owner.pid) : std::string("pid unknown")) +
                                 "): " + path_ + " is held by " + describe(owner) +
                                 ", a live process; wait for it to finish (fedtrack never breaks a live lock)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    // The holder before us may have unlinked the file while we waited:
    // a lock on an unlinked file locks nothing.
    struct stat held {}, named {};
    if (::fstat(fd, &held) != 0 || ::stat(path_.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      ::close(fd);
      continue;
    }
    fd_ = fd;
    long long window = now_ns();
    const std::string record = read_fd(fd_);
    if (!record.empty()) {
      long long since = mtime_ns(held);
      stale_ = parse_owner(record, &since);
      stale_since_ns_ = since;
      window = std::min(window, since);  // a crash during our recovery keeps the dead owner's window
    }
    const long pid = ::getpid();
    const std::string mine = "pid " + std::to_string(pid) + "\nhost " + hostname() + "\nsince " + utc_now() +
                             "\nstart_ticks " + std::to_string(start_ticks_of(pid)) + "\nsince_ns " +
                             std::to_string(window) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, mine.data(), mine.size(), 0) != static_cast<ssize_t>(mine.size())) {
      const int err = errno;
      ::unlink(path_.c_str());
      ::close(fd_);
      errno = err;
      fail_errno("cannot write the repository lock", path_);
    }
    return;
  }
}

RepositoryLock::~RepositoryLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // before unlocking: a file with a record means its owner died
  ::close(fd_);
}

std::vector<long> pids_holding_open(const std::string& path) {
  std::vector<long> out;
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) return out;
  const std::string target = resolved;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (const dirent* p = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(p->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    const std::string fd_dir = std::string("/proc/") + p->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    while (const dirent* f = ::readdir(fds)) {
      if (f->d_name[0] == '.') continue;
      char link[PATH_MAX];
      const ssize_t n = ::readlink((fd_dir + "/" + f->d_name).c_str(), link, sizeof link - 1);
      if (n > 0 && target.compare(0, std::string::npos, link, static_cast<std::size_t>(n)) == 0) {
        out.push_back(pid);
        break;
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return out;
}

std::vector<std::string> recover_git_dir(const std::string& git_dir, const std::string& work_tree,
                                         const RepositoryLock& lock) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (lock.stale()) {
    // mtimes come from a coarser clock than the one the record was stamped with
    const long long window = lock.stale_since_ns() - 1000000000LL;
    auto sweep = [&](const fs::path& file) {
      const std::string name = file.filename().string();
      if (!is_git_lock(name) && !is_libgit2_temporary(name)) return;
      struct stat st {};
      if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || mtime_ns(st) < window) return;
      if (!pids_holding_open(file.string()).empty()) return;
      if (::unlink(file.c_str()) == 0) removed.push_back(file.string());
    };
    for (auto it = fs::recursive_directory_iterator(git_dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      sweep(it->path());
    }
    if (!work_tree.empty()) {
      for (auto it = fs::directory_iterator(work_tree, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (it->path().filename().string().rfind("_git2_", 0) == 0) sweep(it->path());
      }
    }
  }
  // What is left blocks git: report it, never remove it.
  std::vector<fs::path> locks;
  for (auto it = fs::directory_iterator(git_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (is_git_lock(it->path().filename().string())) locks.push_back(it->path());
  }
  const fs::path refs = fs::path(git_dir) / "refs";
  for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (is_git_lock(it->path().filename().string())) locks.push_back(it->path());
  }
  for (const auto& file : locks) {
    const auto holders = pids_holding_open(file.string());
    if (!holders.empty()) {
      throw Error::unavailable("repository busy (pid " + std::to_string(holders.front()) + "): " + file.string() +
                               " is held by a live process (pid " + std::to_string(holders.front()) +
                               "); try again when it is done");
    }
    throw Error::failed_precondition(
        file.string() + " exists and no fedtrack process left it: a git process may be running in " +
        (work_tree.empty() ? git_dir : work_tree) + " or was killed; if none is running, remove the file");
  }
  return removed;
}

std::vector<std::string> remove_dead_temporaries(const std::string& folder) {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return removed;
  const long self = ::getpid();
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    // <name>.tmp-<pid>-<n>
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos) continue;
    const std::string tail = name.substr(at + 5);
    const auto dash = tail.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == tail.size() ||
        tail.find_first_not_of("0123456789-") != std::string::npos || tail.find('-', dash + 1) != std::string::npos) {
      continue;
    }
    const long pid = std::atol(tail.substr(0, dash).c_str());
    if (pid <= 0 || pid == self) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    const std::string path = (fs::path(folder) / name).string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlink(path.c_str()) == 0) removed.push_back(path);
  }
  ::closedir(dir);
  return removed;
}

}  // namespace fedtrack
