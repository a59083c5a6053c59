// Versioning cost for a 100 MB checkpoint, beside the real tools on the same
// file in the same run:
//
//   PATH=$PWD/.venv/bin:$PATH build/bench/bench_versioning [megabytes]
//
//   commit:  ModelRepository::commit_round   vs  dvc add + git add + git commit
//   restore: restore_model(--rev <first>)    vs  git checkout <first> + dvc checkout
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
#include <unistd.h>

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

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-bench-versioning-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string first = random_bytes(mb << 20, 1), second = random_bytes(mb << 20, 2);
  const std::string quiet = " >/dev/null 2>&1";
  const std::string git_env = "GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b ";

  // --- fedtrack ---
  fedtrack::VersioningOptions options;
  options.repo = (dir / "fedtrack").string();
  fedtrack::ModelRepository repo(options);
  std::string first_tag;
  const double ft_commit = timed([&] { first_tag = repo.commit_round("bench", "bench", 1, 2, first, {}, {}).tag; });
  repo.commit_round("bench", "bench", 2, 2, second, {}, {});
  const double ft_restore =
      timed([&] { fedtrack::restore_model(options.repo, first_tag, "models/global.pt", (dir / "restored.pt").string()); });

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
  const std::string blob = (dir / "blob").string();
  fedtrack::write_file_atomically(blob, first);
  sh("md5sum " + blob + quiet);  // warm the page cache for both
  const double md5sum = timed([&] { sh("md5sum " + blob + quiet); });
  const double ours = timed([&] { fedtrack::md5_file(blob); });

  std::printf("versioning a %zu MB checkpoint (same bytes, same run)\n", mb);
  std::printf("%-10s %12s %24s %8s\n", "", "fedtrack s", "baseline s", "ratio");
  std::printf("%-10s %12.3f %24.3f %8.3f   (dvc add + git commit)\n", "commit", ft_commit, dvc_commit, ft_commit / dvc_commit);
  std::printf("%-10s %12.3f %24.3f %8.3f   (git checkout + dvc checkout)\n", "restore", ft_restore, dvc_restore,
              ft_restore / dvc_restore);
  std::printf("%-10s %9.0f MB/s %21.0f MB/s %8.3f   (md5sum)\n", "md5", mb / ours, mb / md5sum, md5sum / ours);
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  }
  fs::remove_all(dir);
  return 0;
}
