#include "promotion.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "fedtrack/core/error.h"

namespace fedtrack {

Gate parse_gate(const std::string& text) {
  static const std::regex re(R"(\s*([\w./:\- ]+?)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+|nan|inf)\s*)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    throw Error::invalid_argument("--require '" + text + "': expected METRIC OP VALUE, e.g. 'eval_accuracy>=0.85'");
  }
  return {text, m[1], m[2], std::strtod(m[3].str().c_str(), nullptr)};
}

bool gate_holds(const Gate& gate, double value) {
  if (gate.op == ">=") return value >= gate.threshold;
  if (gate.op == "<=") return value <= gate.threshold;
  if (gate.op == ">") return value > gate.threshold;
  if (gate.op == "<") return value < gate.threshold;
  return value == gate.threshold;
}

std::string promotion_number(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  return buf;
}

namespace {

bool better(double value, double than, const std::string& mode) { return mode == "max" ? value > than : value < than; }

}  // namespace

const MlflowRun* best_round(const std::vector<MlflowRun>& rounds, const PromotionCriteria& criteria) {
  const MlflowRun* best = nullptr;
  double best_value = 0;
  for (const auto& r : rounds) {
    auto it = r.metrics.find(criteria.metric);
    if (it == r.metrics.end() || std::isnan(it->second)) continue;
    if (!best || better(it->second, best_value, criteria.mode)) {
      best = &r;
      best_value = it->second;
    }
  }
  return best;
}

PromotionDecision decide_promotion(const std::vector<MlflowRun>& rounds, const std::string& what,
                                   const PromotionCriteria& criteria, const std::optional<AliasHolder>& holder) {
  const MlflowRun* best = best_round(rounds, criteria);
  if (!best) throw Error::not_found("no round of " + what + " has metric '" + criteria.metric + "'");
  PromotionDecision d;
  d.candidate = *best;
  d.value = best->metrics.at(criteria.metric);
  d.lineage = Lineage::from_run_tags(best->tags);
  if (!d.lineage.has_commit()) {
    throw Error::failed_precondition("round run " + best->info.run_id + " carries no versioning lineage (" +
                                     lineage_tag::kGitCommit + " / " + lineage_tag::kDvcMd5 + ")");
  }
  for (const auto& g : criteria.gates) {
    auto it = best->metrics.find(g.metric);
    if (it == best->metrics.end()) {
      d.failed.push_back(g.text + ": the candidate has no metric '" + g.metric + "'");
      continue;
    }
    d.gate_values.emplace_back(g.metric, it->second);
    if (!gate_holds(g, it->second)) d.failed.push_back(g.text + ": " + g.metric + " is " + promotion_number(it->second));
  }
  if (holder && holder->value) {
    d.holder = holder;
    if (!better(d.value, *holder->value, criteria.mode)) {
      d.failed.push_back("--better-than " + criteria.holder_alias + ": " + criteria.metric + " " +
                         promotion_number(d.value) + " does not beat " + criteria.holder_alias + "'s " +
                         promotion_number(*holder->value) + " (version " + holder->version + ")");
    }
  }
  return d;
}

std::optional<AliasHolder> current_holder(MlflowClient& client, const std::string& model, const std::string& alias,
                                          const std::string& metric) {
  try {
    const ModelVersion version = client.get_model_version_by_alias(model, alias);
    AliasHolder holder;
    holder.version = version.version;
    holder.run_id = version.run_id;
    const MlflowRun run = client.get_run(version.run_id);
    if (auto it = run.metrics.find(metric); it != run.metrics.end()) holder.value = it->second;
    return holder;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    return std::nullopt;  // no champion yet: nothing to beat
  }
}

}  // namespace fedtrack
