// libFuzzer target: the tracking journal's payload decoder (decode_write in
// tracking/src/tracking_payload.cpp). `fedtrack sync`, `runs` and a running
// job read these JSON texts back from the SQLite journal, which a crash, a
// disk or another program may have damaged. Every input is read as each kind
// of write: a run's create (tags, start time, user, experiment id), a batch
// (metrics, with their datasets, params, tags), an end (status, end time),
// dataset inputs and an artifact (path, content).
// Contract: see fuzz_contract.h. Round trip: what decodes, encoded again the
// way tracking_listener.cpp writes it, decodes to the same values (NaN and
// +-Inf metrics included).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "fedtrack/tracking/journal.h"
#include "fuzz_contract.h"
#include "tracking_payload.h"

namespace {
constexpr const char* kTarget = "journal_payload";
constexpr const char* kJournal = "fuzz.sqlite";

using fedtrack::KeyValue;

bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

bool same_pairs(const std::vector<KeyValue>& p, const std::vector<KeyValue>& q) {
  if (p.size() != q.size()) return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i].key != q[i].key || p[i].value != q[i].value) return false;
  }
  return true;
}

bool same_batch(const fedtrack::LogBatch& a, const fedtrack::LogBatch& b) {
  if (a.metrics.size() != b.metrics.size()) return false;
  for (std::size_t i = 0; i < a.metrics.size(); ++i) {
    const auto& x = a.metrics[i];
    const auto& y = b.metrics[i];
    if (x.key != y.key || !same_value(x.value, y.value) || x.timestamp != y.timestamp || x.step != y.step ||
        x.dataset_name != y.dataset_name || x.dataset_digest != y.dataset_digest) {
      return false;
    }
  }
  return same_pairs(a.params, b.params) && same_pairs(a.tags, b.tags);
}

bool same_datasets(const std::vector<fedtrack::DatasetInput>& a, const std::vector<fedtrack::DatasetInput>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i];
    const auto& y = b[i];
    if (x.name != y.name || x.digest != y.digest || x.source_type != y.source_type || x.source != y.source ||
        x.schema != y.schema || x.profile != y.profile || !same_pairs(x.tags, y.tags)) {
      return false;
    }
  }
  return true;
}

fedtrack::JournalOp op_of(const char* kind, std::string payload) {
  fedtrack::JournalOp op;
  op.seq = 7;
  op.run_key = "job-20261201T000000Z-abcdef/round-001";
  op.op = kind;
  op.payload = std::move(payload);
  return op;
}

// Decodes what an encoder just wrote: must succeed.
fedtrack::JournalWrite reread(const char* kind, const std::string& payload) {
  fedtrack::JournalWrite again;
  fedtrack::fuzz::must_not_throw(kTarget, (std::string("decode_write(") + kind + " just encoded)").c_str(),
                                 [&] { again = fedtrack::decode_write(op_of(kind, payload), kJournal); });
  return again;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string text(fuzz::as_text(data, size));
  JournalWrite w;

  if (fuzz::decodes(kTarget, [&] { w = decode_write(op_of("create", text), kJournal); })) {
    nlohmann::json create = {{"start_time", w.start_time}, {"user", w.user}, {"tags", tags_payload(w.tags)}};
    if (!w.experiment_id.empty()) create["experiment_id"] = w.experiment_id;
    const std::string encoded = dump_json(create);
    const JournalWrite again = reread("create", encoded);
    fuzz::check(again.start_time == w.start_time && again.user == w.user && same_pairs(again.tags, w.tags) &&
                    again.experiment_id == w.experiment_id,
                kTarget, "create: decode(encode(w)) differs from w: " + encoded);
  }

  if (fuzz::decodes(kTarget, [&] { w = decode_write(op_of("batch", text), kJournal); })) {
    const std::string encoded = dump_json(batch_payload(w.batch));
    const JournalWrite again = reread("batch", encoded);
    fuzz::check(same_batch(again.batch, w.batch), kTarget, "batch: decode(encode(w)) differs from w: " + encoded);
  }

  if (fuzz::decodes(kTarget, [&] { w = decode_write(op_of("end", text), kJournal); })) {
    const std::string encoded = dump_json({{"status", w.status}, {"end_time", w.end_time}});
    const JournalWrite again = reread("end", encoded);
    fuzz::check(again.status == w.status && again.end_time == w.end_time, kTarget,
                "end: decode(encode(w)) differs from w: " + encoded);
  }
  if (fuzz::decodes(kTarget, [&] { w = decode_write(op_of("inputs", text), kJournal); })) {
    const std::string encoded = dump_json(inputs_payload(w.datasets));
    const JournalWrite again = reread("inputs", encoded);
    fuzz::check(same_datasets(again.datasets, w.datasets), kTarget,
                "inputs: decode(encode(w)) differs from w: " + encoded);
  }

  if (fuzz::decodes(kTarget, [&] { w = decode_write(op_of("artifact", text), kJournal); })) {
    const std::string encoded = dump_json(artifact_payload(w.artifact_path, w.artifact_content));
    const JournalWrite again = reread("artifact", encoded);
    fuzz::check(again.artifact_path == w.artifact_path && again.artifact_content == w.artifact_content, kTarget,
                "artifact: decode(encode(w)) differs from w: " + encoded);
  }
  return 0;
}
