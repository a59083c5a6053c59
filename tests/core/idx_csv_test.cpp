#include <gtest/gtest.h>

#include <Poco/DeflatingStream.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "csv.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "idx.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_test_dir("fedtrack-test");
  }
  void TearDown() override { testing::remove_test_dir(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// A 2x2x3 ubyte IDX file.
std::string small_idx() {
  std::string b = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < 12; ++i) b += static_cast<char>(i * 10);
  return b;
}

std::string gzip(const std::string& plain) {
  std::ostringstream out;
  {
    Poco::DeflatingOutputStream deflate(out, Poco::DeflatingStreamBuf::STREAM_GZIP);
    deflate << plain;
    deflate.close();
  }
  return out.str();
}

using IdxTest = TempDir;

TEST_F(IdxTest, ReadsRawAndGzipAlike) {
  write_file_atomically(path("raw"), small_idx());
  write_file_atomically(path("packed.gz"), gzip(small_idx()));
  const IdxArray raw = read_idx(path("raw"));
  const IdxArray packed = read_idx(path("packed.gz"));
  EXPECT_EQ(raw.dims, (std::vector<std::int64_t>{2, 2, 3}));
  ASSERT_EQ(raw.data.size(), 12u);
  EXPECT_EQ(raw.data[11], 110);
  EXPECT_EQ(raw.dims, packed.dims);
  EXPECT_EQ(raw.data, packed.data);
}

TEST_F(IdxTest, TruncatedFileIsCorruption) {
  std::string b = small_idx();
  b.pop_back();
  try {
    parse_idx(b, "x.idx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_STREQ(e.what(), "x.idx: IDX payload is 11 bytes, dimensions say 12");
  }
  EXPECT_THROW(parse_idx("\x1f\x8b", "y"), Error);
}

// What read_idx gives for `path`: its dims and bytes, or its error.
struct IdxOutcome {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
  bool failed = false;
  ErrorCode code{};
  std::string error;
  bool operator==(const IdxOutcome& o) const {
    return dims == o.dims && data == o.data && failed == o.failed && error == o.error;
  }
};

template <typename F>
IdxOutcome outcome_of(F&& read) {
  IdxOutcome out;
  try {
    read(out);
  } catch (const Error& e) {
    out.failed = true;
    out.code = e.code();
    out.error = e.what();
  }
  return out;
}

// Readers size buffers by the dimensions (the server's test split, read_idx's
// reserve): dimensions the file cannot hold are refused before anyone sees
// them, raw (the payload is exactly the bytes present) or gzip (deflate
// inflates at most 1032-fold).
TEST_F(IdxTest, DimensionsTheFileCannotHoldAreRefusedBeforeOnDims) {
  const std::string liar = {0, 0, 0x08, 1, 0x40, 0, 0, 0, 1, 2, 3};  // says 2^30 bytes, holds 3
  write_file_atomically(path("liar"), liar);
  write_file_atomically(path("liar.gz"), gzip(liar));
  for (const std::string name : {"liar", "liar.gz"}) {
    bool saw_dims = false;
    try {
      stream_idx(
          path(name), [&](const std::vector<std::int64_t>&) { saw_dims = true; },
          [](const std::uint8_t*, std::size_t) {});
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << name;
      EXPECT_NE(std::string(e.what()).find(path(name)), std::string::npos) << e.what();
    }
    EXPECT_FALSE(saw_dims) << name << ": a buffer could have been sized by 2^30 bytes";
  }
}

// The server streams the training images (stream_idx) instead of reading
// them whole: every file, good or damaged, raw or gzip, must give what
// read_idx gives, the same bytes or the same error; parse_idx (bytes in
// memory) agrees too, and a corrupt gzip stream says so.
TEST_F(IdxTest, StreamingGivesWhatReadIdxGivesForGoodAndDamagedFiles) {
  const std::string good = small_idx();
  std::string big = {0, 0, 0x08, 1, 0, 0x02, 0, 0};  // 131072 bytes: more than one 64 KiB chunk
  for (int i = 0; i < 131072; ++i) big += static_cast<char>(i * 7);
  const std::string packed = gzip(good);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"good", good},
      {"big", big},
      {"truncated", good.substr(0, good.size() - 1)},
      {"trailing", good + "x"},
      {"bad-magic", std::string("\x01\x00\x08\x01", 4) + std::string(8, '\0')},
      {"type", std::string("\x00\x00\x09\x01\x00\x00\x00\x01z", 9)},
      {"zero-dims", std::string("\x00\x00\x08\x00", 4)},
      {"short-header", std::string("\x00\x00\x08\x03\x00\x00", 6)},
      {"empty", ""},
      {"implausible", std::string("\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", 12)},
      {"good.gz", packed},
      {"big.gz", gzip(big)},
      {"truncated.gz", gzip(good.substr(0, good.size() - 3))},
      {"cut.gz", packed.substr(0, packed.size() / 2)},
      {"garbage.gz", std::string("\x1f\x8b", 2) + std::string(40, 'q')},
  };
  for (const auto& [name, bytes] : files) {
    write_file_atomically(path(name), bytes);
    const IdxOutcome whole = outcome_of([&](IdxOutcome& o) {
      IdxArray a = read_idx(path(name));
      o.dims = a.dims;
      o.data = a.data;
    });
    const IdxOutcome streamed = outcome_of([&](IdxOutcome& o) {
      stream_idx(
          path(name), [&](const std::vector<std::int64_t>& dims) { o.dims = dims; },
          [&](const std::uint8_t* b, std::size_t n) {
            EXPECT_LE(n, 65536u);
            o.data.insert(o.data.end(), b, b + n);
          });
    });
    // On an error the streamed side may have seen the dims (and some bytes) first.
    if (whole.failed) {
      EXPECT_TRUE(streamed.failed) << name;
      EXPECT_EQ(streamed.code, whole.code) << name << ": " << streamed.error << " vs " << whole.error;
      EXPECT_EQ(streamed.error, whole.error) << name;
    } else {
      EXPECT_TRUE(streamed == whole) << name << ": " << streamed.error;
    }
  }
  for (const std::string name : {"good", "big", "truncated", "trailing", "bad-magic", "type", "zero-dims",
                                 "short-header", "empty", "implausible"}) {
    const std::string bytes = read_file(path(name));
    const IdxOutcome parsed = outcome_of([&](IdxOutcome& o) {
      IdxArray a = parse_idx(bytes, path(name));
      o.dims = a.dims;
      o.data = a.data;
    });
    const IdxOutcome whole = outcome_of([&](IdxOutcome& o) {
      IdxArray a = read_idx(path(name));
      o.dims = a.dims;
      o.data = a.data;
    });
    EXPECT_EQ(parsed.failed, whole.failed) << name;
    EXPECT_EQ(parsed.error, whole.error) << name;
    EXPECT_EQ(parsed.data, whole.data) << name;
  }
  for (const std::string name : {"cut.gz", "garbage.gz"}) {
    try {
      read_idx(path(name));
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_EQ(std::string(e.what()).rfind(path(name) + ": gzip data is corrupt: ", 0), 0u) << e.what();
    }
  }
  fs::create_directories(dir_ / "folder");
  for (const std::string name : {"missing", "folder"}) {
    const IdxOutcome whole = outcome_of([&](IdxOutcome&) { read_idx(path(name)); });
    const IdxOutcome streamed = outcome_of([&](IdxOutcome&) { stream_idx(path(name), [](auto&) {}, [](auto, auto) {}); });
    EXPECT_EQ(streamed.code, whole.code) << name;
    EXPECT_EQ(streamed.error, whole.error) << name;
  }
}

TEST_F(IdxTest, FindsPlainOrGzipAndNamesBothWhenMissing) {
  write_file_atomically(path("a.gz"), "x");
  EXPECT_EQ(find_idx_file(dir_.string(), "a"), path("a.gz"));
  try {
    find_idx_file(dir_.string(), "b");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "no " + path("b") + " or " + path("b.gz"));
  }
}

using CsvTest = TempDir;

TEST_F(CsvTest, ReadsFeaturesAndNamedLabelColumn) {
  write_file_atomically(path("t.csv"),
                        "age,outcome,income\n"
                        "30,yes,1.5\n"
                        "\"41\",no,2e3\n"
                        "50,yes,-3\n");
  const CsvDataset d = read_csv_dataset(path("t.csv"), "outcome");
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"age", "income"}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(d.labels, (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(d.features, (std::vector<float>{30, 1.5f, 41, 2000, 50, -3}));
}

TEST_F(CsvTest, IntegerLabelsKeepTheirValuesAndTestFilesShareClasses) {
  write_file_atomically(path("train.csv"), "x,y\n1,0\n2,2\n");
  write_file_atomically(path("test.csv"), "x,y\n1,2\n2,9\n");
  const CsvDataset train = read_csv_dataset(path("train.csv"), "");
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(train.labels, (std::vector<std::int64_t>{0, 2}));
  try {
    read_csv_dataset(path("test.csv"), "", train.class_names);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_EQ(std::string(e.what()), path("test.csv") + ":3: record 1: label '9' is not one of the dataset's 3 classes");
  }
}

TEST_F(CsvTest, NonNumericFeatureNamesFileLineAndColumn) {
  write_file_atomically(path("bad.csv"), "a,b,label\n1,2,x\n3,oops,y\n");
  try {
    read_csv_dataset(path("bad.csv"), "label");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), path("bad.csv") + ":3: column 'b': 'oops' is not a number");
  }
  EXPECT_EQ(split_csv_record("a,\"b,c\",\"say \"\"hi\"\"\""),
            (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
}

}  // namespace
}  // namespace fedtrack
