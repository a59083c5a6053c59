// Push and fetch of one file to an S3 remote with fedtrack's S3 code (the
// path every round's upload and `fedtrack restore`'s fallback take),
// timed. Driven by bench/s3_bench.py, which starts moto and times `dvc
// push` / `dvc pull` of the same bytes in the same run.
//
//   bench_s3 FILE s3://bucket/prefix ENDPOINT   (credentials from AWS_*)
// prints one JSON line: {"bytes", "push_s", "fetch_s"}.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "dvc_remote_config.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"
#include "s3_remote.h"

int main(int argc, char** argv) {
  using namespace fedtrack;
  if (argc != 4) {
    std::cerr << "usage: bench_s3 FILE s3://bucket/prefix ENDPOINT\n";
    return 2;
  }
  try {
    const std::string bytes = read_file(argv[1]);
    DvcRemote remote;
    remote.name = "bench";
    remote.url = argv[2];
    remote.settings["endpointurl"] = argv[3];
    S3Remote s3(resolve_s3_settings(remote, process_environment()));
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const std::string md5 = md5_hex(bytes);  // a round's upload hashes its bytes too
    if (!s3.push(md5, bytes)) throw Error::internal("object was already there; use a fresh prefix");
    const auto t1 = clock::now();
    const auto back = s3.fetch(md5, false, bytes.size());
    if (!back || md5_hex(*back) != md5) throw Error::corruption("fetched bytes differ");
    const auto t2 = clock::now();
    const auto s = [](auto d) { return std::chrono::duration<double>(d).count(); };
    std::printf("{\"bytes\": %zu, \"push_s\": %.3f, \"fetch_s\": %.3f}\n", bytes.size(), s(t1 - t0), s(t2 - t1));
  } catch (const std::exception& e) {
    std::cerr << "bench_s3: " << e.what() << "\n";
    return 1;
  }
}
