#include "fedtrack/core/lineage.h"

#include <cstdlib>
#include <sstream>

#include "fedtrack/core/text.h"

namespace fedtrack {

namespace lineage_tag {
const char* const kJobId = "fedtrack.job_id";
const char* const kRound = "fedtrack.round";
const char* const kRunKey = "fedtrack.run_key";
const char* const kGitCommit = "fedtrack.git.commit";
const char* const kGitTag = "fedtrack.git.tag";
const char* const kDvcMd5 = "fedtrack.dvc.md5";
const char* const kDvcPath = "fedtrack.dvc.path";
const char* const kDvcRepo = "fedtrack.dvc.repo";
const char* const kModelSha256 = "fedtrack.model_sha256";
const char* const kModelKey = "fedtrack.model_key";
}  // namespace lineage_tag

namespace {

const char* const kTrailerJob = "fedtrack-job";
const char* const kTrailerRound = "fedtrack-round";
const char* const kTrailerMd5 = "fedtrack-md5";
const char* const kTrailerPath = "fedtrack-path";
const char* const kTrailerRunKey = "fedtrack-run-key";
const char* const kTrailerRunId = "mlflow-run-id";
const char* const kTrailerParentRunId = "mlflow-parent-run-id";
const char* const kTrailerTrackingUri = "mlflow-tracking-uri";
const char* const kTrailerAggregation = "fedtrack-aggregation";

// A round number as written ("7"); anything else (untrusted text) is 0.
int parse_round(const std::string& text) {
  if (text.empty() || text.size() > 9) return 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
  }
  return std::atoi(text.c_str());
}

std::string one_line(std::string value) {
  for (char& c : value) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return value;
}

// The fields with a run tag, in the order they are written.
template <typename L, typename F>
void each_tag(L& l, F&& f) {
  f(lineage_tag::kGitCommit, l.commit);
  f(lineage_tag::kGitTag, l.tag);
  f(lineage_tag::kDvcMd5, l.md5);
  f(lineage_tag::kDvcPath, l.path);
  f(lineage_tag::kDvcRepo, l.repo);
  f(lineage_tag::kModelSha256, l.model_sha256);
}

template <typename L, typename F>
void each_trailer(L& l, F&& f) {
  f(kTrailerMd5, l.md5);
  f(kTrailerPath, l.path);
  f(kTrailerRunKey, l.run_key);
  f(kTrailerRunId, l.run_id);
  f(kTrailerParentRunId, l.parent_run_id);
  f(kTrailerTrackingUri, l.tracking_uri);
  f(kTrailerAggregation, l.aggregation);
}

}  // namespace

Lineage::Tags Lineage::to_run_tags() const {
  Tags out;
  if (!job_id.empty()) out.emplace_back(lineage_tag::kJobId, job_id);
  if (round > 0) out.emplace_back(lineage_tag::kRound, std::to_string(round));
  Lineage safe = *this;
  safe.repo = redact_uri(repo);
  each_tag(safe, [&](const char* key, const std::string& value) {
    if (!value.empty()) out.emplace_back(key, value);
  });
  return out;
}

Lineage Lineage::from_run_tags(const std::map<std::string, std::string>& tags) {
  Lineage l;
  auto get = [&](const char* key) {
    auto it = tags.find(key);
    return it == tags.end() ? std::string() : it->second;
  };
  l.job_id = get(lineage_tag::kJobId);
  l.round = parse_round(get(lineage_tag::kRound));
  each_tag(l, [&](const char* key, std::string& value) { value = get(key); });
  l.repo = redact_uri(l.repo);
  return l;
}

Lineage Lineage::from_model_version(const std::map<std::string, std::string>& version_tags,
                                    const std::map<std::string, std::string>& run_tags) {
  Lineage l = from_run_tags(version_tags);
  const Lineage run = from_run_tags(run_tags);
  if (l.job_id.empty()) l.job_id = run.job_id;
  if (l.round == 0) l.round = run.round;
  auto fill = [](std::string& mine, const std::string& theirs) {
    if (mine.empty()) mine = theirs;
  };
  fill(l.commit, run.commit);
  fill(l.tag, run.tag);
  fill(l.md5, run.md5);
  fill(l.path, run.path);
  fill(l.repo, run.repo);
  fill(l.model_sha256, run.model_sha256);
  return l;
}

std::string Lineage::to_trailers() const {
  std::string out;
  auto line = [&](const char* key, const std::string& value) {
    if (!value.empty()) out += std::string(key) + ": " + one_line(value) + "\n";
  };
  line(kTrailerJob, job_id);
  if (round > 0) line(kTrailerRound, std::to_string(round));
  Lineage safe = *this;
  safe.tracking_uri = redact_uri(tracking_uri);
  each_trailer(safe, line);
  return out;
}

Lineage Lineage::from_commit_message(const std::string& message) {
  Lineage l;
  std::istringstream lines(message);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::string value = line.substr(colon + 2);
    if (key == kTrailerJob) {
      l.job_id = value;
    } else if (key == kTrailerRound) {
      l.round = parse_round(value);
    } else {
      each_trailer(l, [&](const char* k, std::string& field) {
        if (key == k) field = value;
      });
    }
  }
  l.tracking_uri = redact_uri(l.tracking_uri);
  return l;
}

}  // namespace fedtrack
