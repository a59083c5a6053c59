#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "fedtrack/core/digest.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/records.h"
#include "fedtrack/core/round_listener.h"
#include "thread_pool.h"

namespace fedtrack {
namespace {

TEST(Records, ScalarsRenderAsWritten) {
  EXPECT_EQ(scalar_to_string(Scalar{0.05}), "0.05");
  EXPECT_EQ(scalar_to_string(Scalar{std::int64_t{32}}), "32");
  EXPECT_EQ(scalar_to_string(Scalar{true}), "true");
  EXPECT_EQ(scalar_to_string(Scalar{std::string("sgd")}), "sgd");
  EXPECT_EQ(scalar_to_string(Scalar{1.0 / 3}), "0.3333333333333333");
}

TEST(Records, TypedLookupsWidenIntegersAndRejectWrongTypes) {
  const ConfigRecord c{{"lr", 0.1}, {"epochs", std::int64_t{2}}, {"opt", std::string("adam")}};
  EXPECT_EQ(config_double(c, "epochs", 0), 2.0);
  EXPECT_EQ(config_int(c, "missing", 7), 7);
  try {
    config_int(c, "opt", 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config key 'opt': expected an integer, got 'adam'");
  }
}

TEST(Digest, Sha256MatchesKnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a", 1);
  h.update("bc", 2);
  EXPECT_EQ(h.hex(), sha256_hex("abc"));
}

TEST(Files, AtomicWriteReplacesContentAndLeavesNoTemporaries) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fedtrack-files-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "sub" / "f.bin").string();
  write_file_atomically(path, "old");
  write_file_atomically(path, std::string("new\0bytes", 9));
  EXPECT_EQ(read_file(path), std::string("new\0bytes", 9));
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "sub")) ++entries;
  EXPECT_EQ(entries, 1u);
  fs::remove_all(dir);
  EXPECT_THROW(read_file(path), Error);
}

TEST(ThreadPool, RunsEveryTaskAndCarriesExceptions) {
  std::atomic<int> started{0};
  {
    ThreadPool pool(3, [&] { ++started; });
    std::vector<std::future<int>> results;
    for (int i = 0; i < 20; ++i) results.push_back(pool.submit([i] { return i * i; }));
    int sum = 0;
    for (auto& r : results) sum += r.get();
    EXPECT_EQ(sum, 2470);
    auto failing = pool.submit([]() -> int { throw Error::internal("boom"); });
    EXPECT_THROW(failing.get(), Error);
  }  // joined: every worker has run its start hook
  EXPECT_EQ(started.load(), 3);
}

TEST(ModelSnapshot, ProducesEachFormOnceOnDemand) {
  int checkpoints = 0, encodings = 0;
  ModelSnapshot snap([&] { ++checkpoints; return std::string("ckpt"); },
                     [&] { ++encodings; return std::string("enc"); });
  EXPECT_EQ(checkpoints, 0);
  EXPECT_EQ(snap.checkpoint_bytes(), "ckpt");
  EXPECT_EQ(snap.checkpoint_bytes(), "ckpt");
  EXPECT_EQ(checkpoints, 1);
  EXPECT_EQ(encodings, 0);
  EXPECT_EQ(snap.encoded_parameters(), "enc");
}

}  // namespace
}  // namespace fedtrack
