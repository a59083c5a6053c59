// Versioning cost for a 100 MB checkpoint, beside the real tools on the same
// file in the same run:
//
//   PATH=$PWD/.venv/bin:$PATH build/bench/bench_versioning [megabytes]
//
//   commit:  ModelRepository::commit_round   vs  MD5 of the bytes + one durable write of them
//                                            and dvc add + git add + git commit
//   restore: restore_model(--rev <first>)    vs  one read + MD5 + one durable write
//                                            and git checkout <first> + dvc checkout
//   md5:     fedtrack::Md5 throughput        vs  md5sum
// Needs `dvc`, `git` and `md5sum` on PATH; prints seconds and ratios.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <filesystem>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"

namespace fs = std::filesystem;

namespace {

double timed(const std::function<void()>& f) {
  const auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void sh(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n", cmd.c_str());
    std::exit(1);
  }
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const auto v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

// `bytes` written to `path` without the fsync (the page cache only).
void write_unsynced(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  constexpr int kRuns = 5;
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-bench-versioning-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string first = random_bytes(mb << 20, 1), second = random_bytes(mb << 20, 2);
  const std::string quiet = " >/dev/null 2>&1";
  const std::string git_env = "GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b ";

  // --- fedtrack beside its floor, interleaved so both see the same machine:
  //     kRuns rounds of distinct models (each beside MD5 of the bytes in
  //     memory + one durable write of them), then kRuns restores of round 1
  //     (each beside one read + MD5 + one durable write) ---
  const std::string blob = (dir / "blob").string();
  fedtrack::VersioningOptions options;
  options.repo = (dir / "fedtrack").string();
  fedtrack::ModelRepository repo(options);
  std::string first_tag;
  double md5_memory = 1e300, write_durable = 1e300, write_cached = 1e300, read = 1e300;
  double ft_commit = 1e300, ft_restore = 1e300, commit_floor = 1e300, restore_floor = 1e300;
  for (int i = 0; i < kRuns; ++i) {
    std::string model = first;
    std::memcpy(&model[0], &i, sizeof i);  // a different model each round
    const double m = timed([&] { fedtrack::md5_hex(model); });
    const double w = timed([&] { fedtrack::write_file_atomically(blob, model); });
    md5_memory = std::min(md5_memory, m);
    write_durable = std::min(write_durable, w);
    commit_floor = std::min(commit_floor, m + w);
    ft_commit = std::min(ft_commit, timed([&] {
      const auto c = repo.commit_round("bench", "bench", i + 1, kRuns, model, {}, {});
      if (i == 0) first_tag = c.tag;
    }));
  }
  for (int i = 0; i < kRuns; ++i) {
    std::string bytes;
    const double r = timed([&] { bytes = fedtrack::read_file(blob); });
    const double m = timed([&] { fedtrack::md5_hex(bytes); });
    const double w = timed([&] { fedtrack::write_file_atomically(blob + ".copy", bytes); });
    read = std::min(read, r);
    restore_floor = std::min(restore_floor, r + m + w);
    ft_restore = std::min(ft_restore, timed([&] {
      fedtrack::restore_model(options.repo, first_tag, "models/global.pt", (dir / "restored.pt").string());
    }));
  }
  fs::remove(blob + ".copy");
  for (int i = 0; i < kRuns; ++i) {
    write_cached = std::min(write_cached, timed([&] { write_unsynced(blob + ".unsynced", first); }));
  }
  fs::remove(blob + ".unsynced");
  struct stat workspace {};
  ::stat((dir / "fedtrack" / "models" / "global.pt").c_str(), &workspace);

  // --- dvc + git on the same bytes ---
  const std::string d = (dir / "dvc").string();
  fs::create_directories(d + "/models");
  sh("cd " + d + " && git init -q && DVC_NO_ANALYTICS=1 dvc init -q && " + git_env + "git commit -qm init" + quiet);
  fedtrack::write_file_atomically(d + "/models/global.pt", first);
  const double dvc_commit = timed([&] {
    sh("cd " + d + " && DVC_NO_ANALYTICS=1 dvc add -q models/global.pt && git add models/global.pt.dvc models/.gitignore && " +
       git_env + "git commit -qm r1 && git tag r1" + quiet);
  });
  fedtrack::write_file_atomically(d + "/models/global.pt", second);
  sh("cd " + d + " && DVC_NO_ANALYTICS=1 dvc add -q models/global.pt && " + git_env + "git commit -qam r2" + quiet);
  const double dvc_restore = timed(
      [&] { sh("cd " + d + " && git checkout -q r1 && DVC_NO_ANALYTICS=1 dvc checkout -q" + quiet); });

  // --- md5 ---
  sh("md5sum " + blob + quiet);  // warm the page cache for both
  const double md5sum = timed([&] { sh("md5sum " + blob + quiet); });
  const double ours = timed([&] { fedtrack::md5_file(blob); });

  std::printf("versioning a %zu MB checkpoint (same bytes, same run; fedtrack and floor: best of %d)\n", mb, kRuns);
  std::printf("floor      md5 in memory %.3f s, durable write %.3f s (of which fsync ~%.3f: unsynced write %.3f), "
              "read %.3f s\n",
              md5_memory, write_durable, std::max(0.0, write_durable - write_cached), write_cached, read);
  std::printf("workspace  models/global.pt has %ju link(s) (2 = a hard link of its cache object)\n",
              static_cast<std::uintmax_t>(workspace.st_nlink));
  std::printf("%-10s %12s %24s %8s\n", "", "fedtrack s", "baseline s", "ratio");
  std::printf("%-10s %12.3f %24.3f %8.3f   (md5 + one durable write)\n", "commit", ft_commit, commit_floor,
              ft_commit / commit_floor);
  std::printf("%-10s %12.3f %24.3f %8.3f   (dvc add + git commit)\n", "commit", ft_commit, dvc_commit,
              ft_commit / dvc_commit);
  std::printf("%-10s %12.3f %24.3f %8.3f   (read + md5 + one durable write)\n", "restore", ft_restore, restore_floor,
              ft_restore / restore_floor);
  std::printf("%-10s %12.3f %24.3f %8.3f   (git checkout + dvc checkout)\n", "restore", ft_restore, dvc_restore,
              ft_restore / dvc_restore);
  std::printf("%-10s %9.0f MB/s %21.0f MB/s %8.3f   (md5sum)\n", "md5", mb / ours, mb / md5sum, md5sum / ours);
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  }
  fs::remove_all(dir);
  return 0;
}
