#include "derived_file.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fedtrack/core/error.h"
#include "git_util.h"

namespace fedtrack {

void write_derived_file(const std::string& path, std::string_view bytes) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const auto fail = [&](const char* what, const std::string& file) {
    const int err = errno;
    ::unlink(tmp.c_str());
    const std::string message = std::string(what) + " " + file + ": " + std::strerror(err);
    if (err == EACCES || err == EPERM || err == EROFS) throw Error::permission_denied(message);
    throw Error::unavailable(message);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", tmp);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) fail("cannot close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename onto", path);
}

void stage_derived_file(git_repository* repo, git_index* index, const std::string& root, const std::string& rel,
                        std::string_view bytes) {
  const std::string path = root + "/" + rel;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw Error::unavailable("git add " + rel + ": " + path + " is not the regular file just written");
  }
  git_index_entry entry{};
  git_check(git_blob_create_from_buffer(&entry.id, repo, bytes.data(), bytes.size()), "git add " + rel);
  entry.path = rel.c_str();
  entry.mode = GIT_FILEMODE_BLOB;
  entry.file_size = static_cast<std::uint32_t>(st.st_size);
  entry.ctime.seconds = static_cast<std::int32_t>(st.st_ctim.tv_sec);
  entry.ctime.nanoseconds = static_cast<std::uint32_t>(st.st_ctim.tv_nsec);
  entry.mtime.seconds = static_cast<std::int32_t>(st.st_mtim.tv_sec);
  entry.mtime.nanoseconds = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  entry.dev = static_cast<std::uint32_t>(st.st_dev);
  entry.ino = static_cast<std::uint32_t>(st.st_ino);
  entry.uid = st.st_uid;
  entry.gid = st.st_gid;
  git_check(git_index_add(index, &entry), "git add " + rel);
}

}  // namespace fedtrack
