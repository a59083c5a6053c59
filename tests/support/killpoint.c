/* Kill-point interposer (LD_PRELOAD) for crash-recovery tests.
 *
 * Counts the calls that make a change durable or take a lock — rename,
 * renameat, renameat2, link, linkat, fsync, fdatasync, and open/openat with
 * O_CREAT|O_EXCL (git's and libgit2's lock files) — and SIGKILLs the process
 * just before the Nth one:
 *
 *   FEDTRACK_KILLPOINT=N          die before the Nth counted call (1-based)
 *   FEDTRACK_KILLPOINT_COUNT=FILE only count; at exit append "<total>\n" to FILE
 *   FEDTRACK_KILLPOINT_LOG=FILE   append "<n> <call> <path>\n" per counted call
 *
 * The variables (and LD_PRELOAD) are removed from the environment at load,
 * so child processes run without the interposer. Thread-safe: the counter
 * is atomic. Linux/glibc only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static long kill_at = -1;
static long counter = 0;
static char count_file[4096];
static char log_file[4096];

__attribute__((constructor)) static void killpoint_init(void) {
  const char* at = getenv("FEDTRACK_KILLPOINT");
  if (at && *at) kill_at = atol(at);
  const char* count = getenv("FEDTRACK_KILLPOINT_COUNT");
  if (count) snprintf(count_file, sizeof count_file, "%s", count);
  const char* log = getenv("FEDTRACK_KILLPOINT_LOG");
  if (log) snprintf(log_file, sizeof log_file, "%s", log);
  unsetenv("FEDTRACK_KILLPOINT");
  unsetenv("FEDTRACK_KILLPOINT_COUNT");
  unsetenv("FEDTRACK_KILLPOINT_LOG");
  unsetenv("LD_PRELOAD");
}

__attribute__((destructor)) static void killpoint_fini(void) {
  if (!count_file[0]) return;
  FILE* f = fopen(count_file, "a");
  if (!f) return;
  fprintf(f, "%ld\n", __atomic_load_n(&counter, __ATOMIC_SEQ_CST));
  fclose(f);
}

/* Counts one durable step; dies first if it is the chosen one. */
static void step(const char* call, const char* path) {
  const long n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
  if (log_file[0]) {
    FILE* f = fopen(log_file, "a");
    if (f) {
      fprintf(f, "%ld %s %s\n", n, call, path ? path : "-");
      fclose(f);
    }
  }
  if (n == kill_at) {
    kill(getpid(), SIGKILL);
    for (;;) pause();
  }
}

#define REAL(name, ret, args) \
  static ret(*real_##name) args; \
  if (!real_##name) real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name)

int rename(const char* from, const char* to) {
  REAL(rename, int, (const char*, const char*));
  step("rename", to);
  return real_rename(from, to);
}

int renameat(int fromfd, const char* from, int tofd, const char* to) {
  REAL(renameat, int, (int, const char*, int, const char*));
  step("renameat", to);
  return real_renameat(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char* from, int tofd, const char* to, unsigned flags) {
  REAL(renameat2, int, (int, const char*, int, const char*, unsigned));
  step("renameat2", to);
  return real_renameat2(fromfd, from, tofd, to, flags);
}

int link(const char* from, const char* to) {
  REAL(link, int, (const char*, const char*));
  step("link", to);
  return real_link(from, to);
}

int linkat(int fromfd, const char* from, int tofd, const char* to, int flags) {
  REAL(linkat, int, (int, const char*, int, const char*, int));
  step("linkat", to);
  return real_linkat(fromfd, from, tofd, to, flags);
}

int fsync(int fd) {
  REAL(fsync, int, (int));
  step("fsync", NULL);
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync, int, (int));
  step("fdatasync", NULL);
  return real_fdatasync(fd);
}

#define EXCL(flags) (((flags) & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))

int open(const char* path, int flags, ...) {
  REAL(open, int, (const char*, int, ...));
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (EXCL(flags)) step("open", path);
  return real_open(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  REAL(open64, int, (const char*, int, ...));
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (EXCL(flags)) step("open", path);
  return real_open64(path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  REAL(openat, int, (int, const char*, int, ...));
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (EXCL(flags)) step("openat", path);
  return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  REAL(openat64, int, (int, const char*, int, ...));
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (EXCL(flags)) step("openat", path);
  return real_openat64(dirfd, path, flags, mode);
}
