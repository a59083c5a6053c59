// The workspace file of a round as a link of its DVC cache object
// (cache_link.h): cache.type's kinds in order, each failure falling through
// to the next (a real cross-device link, and failures injected through the
// LinkCalls seam), and the repository using it.
#include <gtest/gtest.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cache_link.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st;
}

std::vector<std::string> names_in(const fs::path& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class CacheLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-cache-link");
    object_ = dir_ / "cache" / "ab" / "cdef";
    write_file_atomically(object_.string(), bytes_);
    ::chmod(object_.c_str(), 0444);
    target_ = dir_ / "work" / "global.pt";
  }
  void TearDown() override { testing::remove_test_dir(dir_); }
  fs::path dir_, object_, target_;
  const std::string bytes_ = "model bytes";
};

TEST_F(CacheLinkTest, CacheTypeIsReadLikeDvcWithFedtracksDefault) {
  using K = CacheLink;
  EXPECT_EQ(cache_links_from({}, "c"), (std::vector<K>{K::kReflink, K::kHardlink, K::kCopy}));
  EXPECT_EQ(cache_links_from({{"cache", {{"type", "reflink,copy"}}}}, "c"), (std::vector<K>{K::kReflink, K::kCopy}));
  EXPECT_EQ(cache_links_from({{"cache", {{"type", " hardlink , symlink,copy "}}}}, "c"),
            (std::vector<K>{K::kHardlink, K::kCopy}));
  EXPECT_EQ(cache_links_from({{"cache", {{"dir", "/elsewhere"}}}}, "c").size(), 3u);
  try {
    cache_links_from({{"cache", {{"type", "hardlink,softlink"}}}}, ".dvc/config");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(".dvc/config: cache.type 'hardlink,softlink' names 'softlink'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(cache_links_from({{"cache", {{"type", "symlink"}}}}, "c"), Error);
}

// On this machine: a reflink where the file system clones, else a hard link
// of the object (same inode, read-only); never a second write of the bytes.
TEST_F(CacheLinkTest, DefaultKindsLinkTheObjectWithoutWritingTheBytesAgain) {
  const CacheLink made = place_from_cache(object_.string(), target_.string(), bytes_, cache_links_from({}, "c"));
  EXPECT_NE(made, CacheLink::kCopy);
  EXPECT_EQ(read_file(target_.string()), bytes_);
  if (made == CacheLink::kHardlink) {
    EXPECT_EQ(stat_of(target_).st_ino, stat_of(object_).st_ino);
    EXPECT_EQ(stat_of(target_).st_mode & 0777, 0444u);
  }
  EXPECT_EQ(names_in(target_.parent_path()), std::vector<std::string>{"global.pt"});  // no temporary left
}

// A real cross-device link (/dev/shm is tmpfs here, the test folder is not):
// link(2) fails with EXDEV and the bytes are copied.
TEST_F(CacheLinkTest, ACrossDeviceTargetIsACopy) {
  const fs::path shm = "/dev/shm";
  if (!fs::is_directory(shm) || stat_of(shm).st_dev == stat_of(dir_).st_dev) {
    GTEST_SKIP() << "no second file system at /dev/shm";
  }
  const fs::path target = shm / ("fedtrack-cache-link-" + std::to_string(::getpid())) / "global.pt";
  const CacheLink made = place_from_cache(object_.string(), target.string(), bytes_, {CacheLink::kHardlink, CacheLink::kCopy});
  EXPECT_EQ(made, CacheLink::kCopy);
  EXPECT_EQ(read_file(target.string()), bytes_);
  EXPECT_NE(stat_of(target).st_dev, stat_of(object_).st_dev);
  fs::remove_all(target.parent_path());
}

// Clone and link both refused (a file system without either): a copy,
// an independent file.
TEST_F(CacheLinkTest, WhenLinkingFailsTheBytesAreCopied) {
  LinkCalls refusing;
  refusing.clone = [](int, int) { return errno = EOPNOTSUPP, -1; };
  refusing.link = [](const char*, const char*) { return errno = EPERM, -1; };
  write_file_atomically(target_.string(), "the previous round");
  const CacheLink made = place_from_cache(object_.string(), target_.string(), bytes_, cache_links_from({}, "c"), refusing);
  EXPECT_EQ(made, CacheLink::kCopy);
  EXPECT_EQ(read_file(target_.string()), bytes_);
  EXPECT_NE(stat_of(target_).st_ino, stat_of(object_).st_ino);
  EXPECT_EQ(stat_of(target_).st_nlink, 1u);
  EXPECT_EQ(names_in(target_.parent_path()), std::vector<std::string>{"global.pt"});
}

// A clone that works (simulated with a copy: this file system has no
// reflinks) is used first and renamed into place; a failed clone leaves no
// temporary behind before the hard link is tried.
TEST_F(CacheLinkTest, AReflinkComesFirstAndAFailedOneLeavesNothing) {
  LinkCalls cloning = system_link_calls();
  cloning.clone = [](int from, int to) {
    struct stat st {};
    ::fstat(from, &st);
    return ::sendfile(to, from, nullptr, static_cast<std::size_t>(st.st_size)) == st.st_size ? 0 : -1;
  };
  EXPECT_EQ(place_from_cache(object_.string(), target_.string(), bytes_, cache_links_from({}, "c"), cloning),
            CacheLink::kReflink);
  EXPECT_EQ(read_file(target_.string()), bytes_);
  EXPECT_NE(stat_of(target_).st_ino, stat_of(object_).st_ino);

  LinkCalls no_clone = system_link_calls();
  no_clone.clone = [](int, int) { return errno = EXDEV, -1; };
  EXPECT_EQ(place_from_cache(object_.string(), target_.string(), bytes_, cache_links_from({}, "c"), no_clone),
            CacheLink::kHardlink);
  EXPECT_EQ(stat_of(target_).st_ino, stat_of(object_).st_ino);
  EXPECT_EQ(names_in(target_.parent_path()), std::vector<std::string>{"global.pt"});
}

// cache.type without copy, and no kind works: an error naming the target and
// what was tried; the previous file stays.
TEST_F(CacheLinkTest, NoKindThatWorksIsAnErrorAndKeepsThePreviousFile) {
  LinkCalls refusing;
  refusing.clone = [](int, int) { return errno = EOPNOTSUPP, -1; };
  refusing.link = [](const char*, const char*) { return errno = EMLINK, -1; };
  write_file_atomically(target_.string(), "the previous round");
  try {
    place_from_cache(object_.string(), target_.string(), bytes_, {CacheLink::kReflink, CacheLink::kHardlink}, refusing);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(target_.string()), std::string::npos) << what;
    EXPECT_NE(what.find("hardlink: " + std::string(std::strerror(EMLINK))), std::string::npos) << what;
  }
  EXPECT_EQ(read_file(target_.string()), "the previous round");
  EXPECT_EQ(names_in(target_.parent_path()), std::vector<std::string>{"global.pt"});
}

class CacheLinkRepo : public CacheLinkTest {
 protected:
  void SetUp() override {
    CacheLinkTest::SetUp();
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    options_.repo = (dir_ / "models-repo").string();
  }
  fs::path object_of(const std::string& md5) const {
    return fs::path(options_.repo) / ".dvc/cache/files/md5" / md5.substr(0, 2) / md5.substr(2);
  }
  VersioningOptions options_;
};

// By default the work-tree model is its cache object's hard link; with
// `cache.type = copy` in .dvc/config it is an independent copy.
TEST_F(CacheLinkRepo, TheWorkTreeModelFollowsCacheType) {
  ModelRepository repo(options_);
  const fs::path model = fs::path(options_.repo) / "models/global.pt";
  const RoundCommit r1 = repo.commit_round("job", "demo", 1, 2, "weights one", {}, {});
  EXPECT_EQ(stat_of(model).st_ino, stat_of(object_of(r1.md5)).st_ino);

  write_file_atomically((fs::path(options_.repo) / ".dvc/config").string(), "[cache]\n    type = copy\n");
  const RoundCommit r2 = repo.commit_round("job", "demo", 2, 2, "weights two", {}, {});
  EXPECT_EQ(read_file(model.string()), "weights two");
  EXPECT_EQ(stat_of(model).st_nlink, 1u);
  EXPECT_EQ(md5_file(object_of(r2.md5).string()).md5, r2.md5);
  EXPECT_EQ(md5_file(object_of(r1.md5).string()).md5, r1.md5);
}

// A round that fails after its model was linked puts the previous model
// file back (kept as a hard link, not read into memory) and leaves no
// temporary; the next try commits.
TEST_F(CacheLinkRepo, AFailedRoundPutsThePreviousModelFileBack) {
  ModelRepository repo(options_);
  const fs::path top(options_.repo);
  const RoundCommit r1 = repo.commit_round("job", "demo", 1, 2, "weights one", {}, {});
  const auto before = stat_of(top / "models/global.pt");
  // The export's file is linked after the model: a directory in its way fails the round there.
  fs::create_directories(top / "exports/global.onnx/blocker");
  EXPECT_THROW(repo.commit_round("job", "demo", 2, 2, "weights two", {}, {}, {{"exports/global.onnx", "onnx"}}), Error);
  EXPECT_EQ(read_file((top / "models/global.pt").string()), "weights one");
  EXPECT_EQ(stat_of(top / "models/global.pt").st_ino, before.st_ino);
  for (const auto& name : names_in(top / "models")) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  EXPECT_EQ(model_history(options_.repo).size(), 1u);

  fs::remove_all(top / "exports/global.onnx");
  const RoundCommit r2 = repo.commit_round("job", "demo", 2, 2, "weights two", {}, {}, {{"exports/global.onnx", "onnx"}});
  EXPECT_EQ(read_file((top / "models/global.pt").string()), "weights two");
  EXPECT_EQ(read_file((top / "exports/global.onnx").string()), "onnx");
  for (const auto& name : names_in(top / "models")) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  EXPECT_EQ(md5_file(object_of(r1.md5).string()).md5, r1.md5);  // the old object untouched
  EXPECT_NE(r2.commit, r1.commit);
}

// A restore copies the object in one pass and checks it; a corrupt object
// leaves nothing at the destination.
TEST_F(CacheLinkRepo, RestoreCopiesAndChecksInOnePass) {
  ModelRepository repo(options_);
  const RoundCommit r1 = repo.commit_round("job", "demo", 1, 1, "weights one", {}, {});
  const fs::path out = dir_ / "out" / "restored.pt";
  EXPECT_EQ(restore_model(options_.repo, r1.tag, "models/global.pt", out.string()).source, "cache");
  EXPECT_EQ(read_file(out.string()), "weights one");
  EXPECT_EQ(stat_of(out).st_nlink, 1u);  // a copy: the user's file, not the cache object
  fs::remove(out);
  const fs::path object = object_of(r1.md5);
  fs::remove(object);
  write_file_atomically(object.string(), "weights 0ne");
  try {
    restore_model(options_.repo, r1.tag, "models/global.pt", out.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    EXPECT_NE(std::string(e.what()).find("is corrupt (md5 " + md5_hex("weights 0ne") + ")"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(names_in(out.parent_path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace fedtrack
