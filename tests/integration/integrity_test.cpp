// Integrity of what a job reads back, driven through the real `fedtrack`.
// The resume point: a 3-round job dies after round 2
// (FEDTRACK_TEST_EXIT_AFTER_ROUND; the state is then marked recorded, as if it
// had died during round 3, so a resume trains on from the restored model) and
// is resumed from a damaged copy of its state file; a damaged state is exit 5
// naming the file, never exit 0 with another model. The dataset: a damaged label is exit 5, never a model with
// more classes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "idx.h"
#include "fedtrack/core/parameters.h"
#include "server_state.h"
#include "support/run_fedtrack.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

using testing::Outcome;

const std::string kJob =
    " --set rounds=3 --set data.limit_train=600 --set data.limit_test=100 --set clients.count=2"
    " --set runtime.parallelism=1 --set runtime.threads_per_client=1 --json";
const std::string kState = "fashion-mnist-fedavg.state.db";

Outcome fedtrack_in(const fs::path& dir, const std::string& args, const std::string& env = "") {
  const std::string out = (dir / "stdout").string(), err = (dir / "stderr").string();
  return testing::run_fedtrack(FEDTRACK_EXE, dir.string(), env, args, out, err);
}

std::string model_sha(const Outcome& o) {
  std::string t = o.out;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? t : t.substr(nl + 1))["final"]["model_sha256"];
}

class StateIntegrity : public ::testing::Test {
 protected:
  // One crashed workspace (state file, journal, model repository) for the
  // suite, and the model a resume from it gives.
  static void SetUpTestSuite() {
    suite_ = fs::temp_directory_path() / ("fedtrack-state-" + std::to_string(::getpid()));
    fs::remove_all(suite_);
    fs::create_directories(suite_ / "crashed");
    const Outcome crashed = fedtrack_in(suite_ / "crashed", "run" + kJob, "FEDTRACK_TEST_EXIT_AFTER_ROUND=2");
    ASSERT_EQ(crashed.status, 137) << crashed.err;
    {
      ServerStateFile state((suite_ / "crashed" / kState).string());
      ASSERT_TRUE(state.load());
      state.mark_recorded();
    }
    fs::copy(suite_ / "crashed", suite_ / "reference", fs::copy_options::recursive);
    const Outcome resumed = fedtrack_in(suite_ / "reference", "run --resume" + kJob);
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    reference_sha_ = model_sha(resumed);
  }
  static void TearDownTestSuite() { testing::remove_test_dir(suite_); }

  void SetUp() override { dir_ = testing::make_test_dir("fedtrack-state-case"); }
  void TearDown() override { testing::remove_test_dir(dir_); }

  // A fresh copy of the crashed workspace.
  fs::path workspace(const std::string& name) {
    const fs::path w = dir_ / name;
    fs::copy(suite_ / "crashed", w, fs::copy_options::recursive);
    return w;
  }

  static void sql(const fs::path& db_path, const std::string& statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &message);
    const std::string why = message ? message : "";
    sqlite3_free(message);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << why;
  }

  // A state that passes its own checksum but restores another model: the
  // checksum is recomputed by ServerStateFile::save.
  static void replace_model(const fs::path& state_path) {
    ServerStateFile file(state_path.string());
    std::optional<SavedState> saved = file.load();
    ASSERT_TRUE(saved);
    Parameters params = decode_parameters(saved->model);
    params.tensors[0].view(-1)[0].add_(0.25f);
    saved->model = encode_parameters(params);
    file.save(*saved);
  }

  static fs::path suite_;
  static std::string reference_sha_;
  fs::path dir_;
};

fs::path StateIntegrity::suite_;
std::string StateIntegrity::reference_sha_;

TEST_F(StateIntegrity, SingleBitFlipsAreExitFiveOrChangeNothing) {
  const std::string pristine = read_file((suite_ / "crashed" / kState).string());
  ASSERT_GT(pristine.size(), 8192u);
  // The SQLite header and schema page, then positions spread over the file
  // (b-tree pages, the model's overflow pages, the checksum, free pages).
  std::vector<std::size_t> positions = {0, 7, 16, 18, 21, 28, 31, 44, 56, 100, 101, 105, 110, 3900, 4000, 4095};
  std::mt19937_64 rng(20261201);
  while (positions.size() < 32) positions.push_back(4096 + rng() % (pristine.size() - 4096));
  int refused = 0, unchanged = 0;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const std::size_t at = positions[i];
    const int bit = static_cast<int>(rng() % 8);
    SCOPED_TRACE("byte " + std::to_string(at) + " bit " + std::to_string(bit));
    const fs::path w = workspace("flip-" + std::to_string(i));
    std::string damaged = pristine;
    damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
    write_file_atomically((w / kState).string(), damaged);
    const Outcome o = fedtrack_in(w, "run --resume" + kJob);
    if (o.status == 0) {
      EXPECT_EQ(model_sha(o), reference_sha_) << "a damaged state resumed to another model";
      ++unchanged;
    } else {
      EXPECT_EQ(o.status, 5) << o.err;
      EXPECT_NE(o.err.find("state file " + kState), std::string::npos) << o.err;
      ++refused;
    }
    fs::remove_all(w);
  }
  std::cout << "[ flips    ] " << refused << " refused (exit 5), " << unchanged << " in bytes nothing reads"
            << std::endl;
  EXPECT_GT(refused, static_cast<int>(positions.size()) / 2);
}

TEST_F(StateIntegrity, MalformedOrUncheckedStateFilesAreCorruptionNamingTheFile) {
  const std::string pristine = read_file((suite_ / "crashed" / kState).string());
  const std::string journal = read_file((suite_ / "crashed" / ".fedtrack" / "journal.sqlite").string());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not sqlite", "this is not a database, just text\n"},
      {"truncated", pristine.substr(0, 6000)},
      {"another schema", journal},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    const fs::path w = workspace(what == "not sqlite" ? "text" : what == "truncated" ? "cut" : "schema");
    write_file_atomically((w / kState).string(), bytes);
    for (const std::string resume : {" --resume", ""}) {
      const Outcome o = fedtrack_in(w, "run" + resume + kJob);
      EXPECT_EQ(o.status, 5) << o.err;
      EXPECT_NE(o.err.find("state file " + kState + " is corrupt"), std::string::npos) << o.err;
      EXPECT_NE(o.err.find("without --resume"), std::string::npos) << o.err;
    }
  }
  // A state file without a checksum (as fedtrack wrote before it had one) is
  // refused, not trusted.
  const fs::path w = workspace("legacy");
  sql(w / kState, "DELETE FROM state WHERE key = 'checksum'");
  const Outcome o = fedtrack_in(w, "run --resume" + kJob);
  EXPECT_EQ(o.status, 5) << o.err;
  EXPECT_NE(o.err.find("has no checksum"), std::string::npos) << o.err;
}

TEST_F(StateIntegrity, SelfConsistentStateWithAnotherModelThanGitIsCorruption) {
  const fs::path w = workspace("forged");
  replace_model(w / kState);
  const Outcome o = fedtrack_in(w, "run --resume" + kJob);
  EXPECT_EQ(o.status, 5) << o.err;
  EXPECT_NE(o.err.find("state file " + kState + ": round 2 model has md5 "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("/round-002 recorded "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("fedtrack restore --repo"), std::string::npos) << o.err;
  // Nothing ran: no round 3, the state still waits.
  EXPECT_EQ(o.err.find("round 3/3"), std::string::npos) << o.err;

  // Without versioning, the journal's model sha256 for round 2 catches it.
  const Outcome journal = fedtrack_in(w, "run --resume --set versioning.enabled=false" + kJob);
  EXPECT_EQ(journal.status, 5) << journal.err;
  EXPECT_NE(journal.err.find("the tracking journal"), std::string::npos) << journal.err;
}

TEST(DataIntegrity, CorruptLabelByteIsExitFiveNamingFileAndRecord) {
  const fs::path dir = testing::make_test_dir("fedtrack-labels");
  const fs::path data = dir / "fashion";
  fs::create_directories(data);
  const fs::path source = "/usr/share/datasets/fashion-mnist";
  for (const char* name : {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    fs::create_symlink(source / name, data / name);
  }
  IdxArray labels = read_idx((source / "train-labels-idx1-ubyte.gz").string());
  labels.data[123] = 200;  // one damaged byte in a copy of the labels
  write_file_atomically((data / "train-labels-idx1-ubyte").string(), encode_idx(labels));
  const Outcome o = fedtrack_in(dir, "run --set data.path=" + data.string() + kJob);
  EXPECT_EQ(o.status, 5) << o.err;
  EXPECT_NE(o.err.find((data / "train-labels-idx1-ubyte").string() +
                       ": record 123 has label 200, outside the dataset's 10 classes (0..9)"),
            std::string::npos)
      << o.err;
  testing::remove_test_dir(dir);
}

}  // namespace
}  // namespace fedtrack
