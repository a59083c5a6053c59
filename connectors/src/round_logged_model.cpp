#include "round_logged_model.h"

#include "fedtrack/core/error.h"

namespace fedtrack {
namespace {

// An MLflow search filter value in quotes.
std::string quoted(const std::string& value) {
  return value.find('\'') == std::string::npos ? "'" + value + "'" : "\"" + value + "\"";
}

}  // namespace

std::optional<LoggedModelInfo> round_logged_model(MlflowClient& client, const std::string& experiment_id,
                                                  const Lineage& lineage) {
  if (lineage.job_id.empty() || lineage.round <= 0 || lineage.md5.empty()) return std::nullopt;
  const std::string filter = std::string("tags.`") + lineage_tag::kJobId + "` = " + quoted(lineage.job_id) +
                             " AND tags.`" + lineage_tag::kRound + "` = '" + std::to_string(lineage.round) + "'";
  std::vector<LoggedModelInfo> found;
  try {
    found = search_logged_models(client, {experiment_id}, filter);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound || e.code() == ErrorCode::kInvalidArgument) return std::nullopt;
    throw;
  }
  std::optional<LoggedModelInfo> best;
  for (auto& m : found) {
    // The server's filter narrows; these checks decide.
    const Lineage l = Lineage::from_run_tags(m.tags);
    if (m.status != "LOGGED_MODEL_READY" || l.job_id != lineage.job_id || l.round != lineage.round ||
        l.md5 != lineage.md5) {
      continue;
    }
    if (!best || m.creation_ms < best->creation_ms ||
        (m.creation_ms == best->creation_ms && m.model_id < best->model_id)) {
      best = std::move(m);
    }
  }
  return best;
}

}  // namespace fedtrack
