// The binary encodings a deployment depends on: network messages (wire.h),
// resumable state records and the resume state file.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <random>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "server_state.h"
#include "fedtrack/core/state_record.h"
#include "wire.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::kInternal;
}

// The server decodes each update from the request body it read: the payload
// keeps the body's buffer (a model is never copied to become the payload).
TEST(Wire, DecodingAnOwnedBodyKeepsThePayloadInItsBuffer) {
  Message m;
  m.kind = MessageKind::kFitResult;
  m.header = {{"job_id", std::string("job-1")}};
  m.payload = std::string(1 << 20, 'p');
  std::string body = encode_message(m);
  const char* buffer = body.data();
  const Message back = decode_message(std::move(body));
  EXPECT_EQ(back.payload.data(), buffer);
  EXPECT_EQ(back.payload, m.payload);
  EXPECT_EQ(back.header, m.header);
  EXPECT_EQ(back.kind, m.kind);
}

TEST(Wire, MessagesRoundTripEveryScalarType) {
  Message m;
  m.kind = MessageKind::kFitResult;
  m.header = {{"job_id", std::string("job-1")}, {"task_id", std::int64_t{42}}, {"metric/train_loss", 0.25},
              {"ok", true}, {"empty", std::string()}};
  m.payload = std::string("\0\1\2payload", 10);
  const Message back = decode_message(encode_message(m));
  EXPECT_EQ(back.kind, m.kind);
  EXPECT_EQ(back.header, m.header);
  EXPECT_EQ(back.payload, m.payload);
  // The head alone is what precedes the payload.
  EXPECT_EQ(encode_message_head(m.kind, m.header, m.payload.size()) + m.payload, encode_message(m));
}

TEST(Wire, EveryTruncationIsRefusedAndNothingIsReadPastTheEnd) {
  const std::string bytes = encode_message({MessageKind::kFitTask, {{"round", std::int64_t{3}}}, "abcdef"});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(code_of([&] { decode_message(bytes.substr(0, n)); }), ErrorCode::kCorruption) << "length " << n;
  }
  EXPECT_EQ(code_of([&] { decode_message(bytes + "x"); }), ErrorCode::kCorruption);
}

TEST(Wire, WrongVersionKindOrTagIsRefusedWithTheReason) {
  std::string bytes = encode_message({MessageKind::kWait, {}, ""});
  std::string v2 = bytes;
  v2[4] = 2;
  try {
    decode_message(v2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("protocol version 2"), std::string::npos) << e.what();
  }
  std::string kind = bytes;
  kind[6] = 99;
  EXPECT_EQ(code_of([&] { decode_message(kind); }), ErrorCode::kInvalidArgument);
  std::string tag = encode_message({MessageKind::kWait, {{"k", true}}, ""});
  tag[4 + 2 + 1 + 4 + 4 + 4 + 1] = 7;  // the type tag of key "k"
  EXPECT_EQ(code_of([&] { decode_message(tag); }), ErrorCode::kCorruption);
  std::string lying = bytes;
  lying[7] = static_cast<char>(0xff);  // header length far past the end
  EXPECT_EQ(code_of([&] { decode_message(lying); }), ErrorCode::kCorruption);
}

TEST(Wire, RandomBytesNeverCrashTheDecoder) {
  std::mt19937_64 rng(5);
  const std::string valid = encode_message({MessageKind::kFitResult, {{"a", 1.0}, {"b", std::string("x")}}, "pp"});
  for (int i = 0; i < 2000; ++i) {
    std::string b = valid;
    b[rng() % b.size()] = static_cast<char>(rng());
    try {
      decode_message(b);
    } catch (const Error&) {
    }
  }
}

TEST(StateRecord, RoundTripsNestsAndRefusesDamage) {
  StateRecord inner = {{"m", std::string("\0moments", 8)}, {"rng", encode_rng(std::mt19937_64(9))}};
  StateRecord outer = {{"clip", encode_f64(0.1)}};
  nest(outer, "inner/", inner);
  const StateRecord back = decode_state(encode_state(outer));
  EXPECT_EQ(back, outer);
  EXPECT_EQ(unnest(back, "inner/"), inner);
  EXPECT_EQ(decode_f64(state_at(back, "clip")), 0.1);
  std::mt19937_64 a(9), b = decode_rng(state_at(unnest(back, "inner/"), "rng"));
  EXPECT_EQ(a(), b());
  const std::string bytes = encode_state(outer);
  EXPECT_EQ(code_of([&] { decode_state(bytes.substr(0, bytes.size() - 1)); }), ErrorCode::kCorruption);
  EXPECT_EQ(code_of([&] { state_at(back, "absent"); }), ErrorCode::kCorruption);
}

TEST(ServerStateFile, SavesReplacesAndMarksFinished) {
  const auto dir = testing::make_test_dir("state");
  const std::string path = (dir / "job.state.db").string();
  {
    ServerStateFile file(path);
    EXPECT_FALSE(file.load().has_value());
    SavedState s;
    s.job_id = "job-1";
    s.job_name = "job";
    s.job_digest = "abc";
    s.total_rounds = 5;
    s.completed_round = 2;
    s.model = std::string("\0model", 6);
    s.strategy_state = encode_state({{"v", "1"}});
    s.sampler_state = "rng";
    s.initial = Metrics{{"eval_accuracy", 0.1}};
    s.rounds = {{1, {{"eval_accuracy", 0.5}}}, {2, {{"eval_accuracy", 0.6}}}};
    file.save(s);
    s.completed_round = 1;  // replaced as a whole
    s.rounds.pop_back();
    file.save(s);
  }
  ServerStateFile file(path);
  auto loaded = file.load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->job_id, "job-1");
  EXPECT_EQ(loaded->completed_round, 1);
  EXPECT_EQ(loaded->rounds.size(), 1u);
  EXPECT_EQ(loaded->model, std::string("\0model", 6));
  EXPECT_EQ(loaded->initial->at("eval_accuracy"), 0.1);
  EXPECT_FALSE(loaded->finished);
  file.mark_finished();
  EXPECT_TRUE(file.load()->finished);
  testing::remove_test_dir(dir);
}

TEST(ServerStateFile, RoundSummariesRoundTripForReplay) {
  RoundSummary s;
  s.round = 3;
  s.total_rounds = 5;
  s.metrics = {{"eval_accuracy", 0.75}, {"round_seconds", 1.5}};
  s.fit_config = {{"lr", 0.05}, {"epochs", std::int64_t{1}}, {"optimizer", std::string("sgd")}};
  s.bytes_down = 123;
  s.round_seconds = 1.5;
  ClientRoundStat ok;
  ok.client_id = "alpha";
  ok.num_examples = 10;
  ok.fit_metrics = {{"train_loss", 0.5}};
  ok.data_fingerprint = "f1";
  ClientRoundStat failed;
  failed.client_id = "bravo";
  failed.ok = false;
  failed.error = "silent";
  s.clients = {ok, failed};
  const RoundSummary back = decode_round_summary(encode_round_summary(s));
  EXPECT_EQ(back.round, 3);
  EXPECT_EQ(back.metrics, s.metrics);
  EXPECT_EQ(back.fit_config, s.fit_config);
  EXPECT_EQ(back.bytes_down, 123u);
  ASSERT_EQ(back.clients.size(), 2u);
  EXPECT_EQ(back.clients[0].client_id, "alpha");
  EXPECT_EQ(back.clients[0].fit_metrics, ok.fit_metrics);
  EXPECT_FALSE(back.clients[1].ok);
  EXPECT_EQ(back.clients[1].error, "silent");
}

SavedState sample_state() {
  SavedState s;
  s.job_id = "job-1";
  s.job_name = "job";
  s.job_digest = "abc";
  s.total_rounds = 5;
  s.completed_round = 2;
  s.model = std::string("\0model", 6);
  s.strategy_state = encode_state({{"v", "1"}});
  s.sampler_state = "rng";
  s.rounds = {{1, {{"eval_accuracy", 0.5}}}, {2, {{"eval_accuracy", 0.6}}}};
  s.last_summary = "summary";
  s.recorded = false;
  return s;
}

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << statement;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(ServerStateFile, ChecksumCoversEveryEntryAndSurvivesTheFlags) {
  const auto dir = testing::make_test_dir("state-sum");
  const std::string path = (dir / "job.state.db").string();
  {
    ServerStateFile file(path);
    file.save(sample_state());
    file.mark_recorded();  // flags change without a full save; the checksum follows
  }
  {
    ServerStateFile file(path);
    auto loaded = file.load();
    ASSERT_TRUE(loaded);
    EXPECT_TRUE(loaded->recorded);
    EXPECT_FALSE(loaded->finished);
    file.mark_finished();
  }
  EXPECT_TRUE(ServerStateFile(path).load()->finished);
  const std::string good = read_file(path);
  // Any entry changed behind fedtrack's back: the model, a metric, the round, a flag, a new key.
  for (const std::string change :
       {"UPDATE state SET value = X'006d6f64656c' || X'00' WHERE key = 'model'",
        "UPDATE state SET value = 'rnh' WHERE key = 'sampler_state'",
        "UPDATE state SET value = '1' WHERE key = 'completed_round'",
        "UPDATE state SET value = '0' WHERE key = 'finished'",
        "UPDATE state SET value = 'summarx' WHERE key = 'last_summary'",
        "INSERT INTO state VALUES ('initial', X'00')"}) {
    SCOPED_TRACE(change);
    write_file_atomically(path, good);
    sql(path, change);
    const std::string what = message_of([&] { ServerStateFile(path).load(); });
    EXPECT_EQ(what.rfind("state file " + path + " is corrupt: round ", 0), 0u) << what;
    EXPECT_NE(what.find("checksum mismatch"), std::string::npos) << what;
    EXPECT_NE(what.find("without --resume"), std::string::npos) << what;
  }
  write_file_atomically(path, good);
  sql(path, "DELETE FROM state WHERE key = 'checksum'");
  EXPECT_NE(message_of([&] { ServerStateFile(path).load(); }).find("has no checksum"), std::string::npos);
  testing::remove_test_dir(dir);
}

TEST(ServerStateFile, FilesThatAreNotStateFilesAreCorruptionNamingThem) {
  const auto dir = testing::make_test_dir("state-bad");
  const std::string path = (dir / "job.state.db").string();
  write_file_atomically(path, "not a database at all, but long enough to have a header.........................\n");
  EXPECT_EQ(message_of([&] { ServerStateFile file(path); file.load(); })
                .rfind("state file " + path + " is corrupt: not an SQLite database", 0),
            0u);
  std::filesystem::remove(path);
  sql(path, "CREATE TABLE runs (id INTEGER)");
  EXPECT_NE(message_of([&] { ServerStateFile file(path); }).find("not a fedtrack state file (its schema holds table runs)"),
            std::string::npos);
  std::filesystem::remove(path);
  sql(path, "CREATE TABLE state (key TEXT, value TEXT)");
  EXPECT_NE(message_of([&] { ServerStateFile file(path); }).find("not a fedtrack state file"), std::string::npos);
  // Truncated: a real state file cut short.
  std::filesystem::remove(path);
  {
    SavedState big = sample_state();
    big.model = std::string(100000, 'm');
    ServerStateFile(path).save(big);
  }
  const std::string whole = read_file(path);
  std::string readonly = whole;
  readonly[18] = 5;  // a header SQLite reads but then refuses to write: refused before anything runs
  write_file_atomically(path, readonly);
  EXPECT_NE(message_of([&] { ServerStateFile file(path); }).find("file format version 5 at header byte 18"),
            std::string::npos);
  write_file_atomically(path, whole.substr(0, 20000));
  EXPECT_EQ(message_of([&] { ServerStateFile file(path); file.load(); }).rfind("state file " + path + " is corrupt", 0),
            0u);
  testing::remove_test_dir(dir);
}

TEST(ServerStateFile, DamagedRoundSummariesAreCorruptionNeverAnotherError) {
  RoundSummary s;
  s.round = 3;
  s.total_rounds = 5;
  s.metrics = {{"eval_accuracy", 0.75}};
  ClientRoundStat c;
  c.client_id = "alpha";
  c.num_examples = 10;
  s.clients = {c};
  const std::string bytes = encode_round_summary(s);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    try {
      decode_round_summary(bytes.substr(0, n));
      ADD_FAILURE() << "a summary cut at " << n << " decoded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    }
  }
  // Well-formed records with unreadable values (std::stoi would throw std::invalid_argument).
  StateRecord r = decode_state(bytes);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"round", "x"}, {"round", "99999999999999"}, {"bytes_up", "-1"}, {"total_rounds", "5 "}}) {
    SCOPED_TRACE(key + "=" + value);
    StateRecord bad = r;
    bad[key] = value;
    EXPECT_NE(message_of([&] { decode_round_summary(encode_state(bad)); }).find("round summary: '" + key + "'"),
              std::string::npos);
  }
  // A client's entry with an unreadable flag or count.
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{{"ok", "yes"}, {"num_examples", "1e3"}}) {
    SCOPED_TRACE(key + "=" + value);
    StateRecord client = decode_state(r.at("client/000000"));
    client[key] = value;
    StateRecord bad = r;
    bad["client/000000"] = encode_state(client);
    EXPECT_NE(message_of([&] { decode_round_summary(encode_state(bad)); }).find("'" + key + "'"), std::string::npos);
  }
  StateRecord client = decode_state(r.at("client/000000"));
  client.erase("ok");
  StateRecord bad = r;
  bad["client/000000"] = encode_state(client);
  EXPECT_NE(message_of([&] { decode_round_summary(encode_state(bad)); }).find("'ok' is missing"), std::string::npos);
}

}  // namespace
}  // namespace fedtrack
