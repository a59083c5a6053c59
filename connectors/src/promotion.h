// The promotion decision of `fedtrack promote`, apart from its I/O: which
// round of a job is the candidate (best on a metric), whether every gate
// holds, and whether it beats the current holder of an alias. Private to
// connectors.
//
// decide_promotion() is pure: runs and the holder in, a PromotionDecision
// out; nothing is read or written. current_holder() is the one MLflow read
// the decision needs besides the rounds (the alias's model version and its
// run). promote_command.cpp does the rest (finding the job, restoring and
// registering the model, GTO tags, CI outputs). Plain values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fedtrack/core/lineage.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack {

// One --require: METRIC OP VALUE with OP one of >= <= == > <.
struct Gate {
  std::string text;  // as the user wrote it
  std::string metric;
  std::string op;
  double threshold = 0;
};

// Error(kInvalidArgument) naming the text when it is not METRIC OP VALUE.
Gate parse_gate(const std::string& text);
// False for NaN against any threshold (NaN never passes a gate).
bool gate_holds(const Gate& gate, double value);

struct PromotionCriteria {
  std::string metric = "eval_accuracy";
  std::string mode = "max";  // max | min: which way is better
  std::vector<Gate> gates;
  std::string holder_alias;  // --better-than; empty: nothing to beat
};

// The model version that holds `holder_alias` now, and its run's metric.
struct AliasHolder {
  std::string version;
  std::string run_id;
  std::optional<double> value;  // none: its run has no such metric (nothing to beat)
};

struct PromotionDecision {
  MlflowRun candidate;      // the best round
  double value = 0;         // its criteria.metric
  Lineage lineage;          // from its tags; has_commit() holds
  std::vector<std::pair<std::string, double>> gate_values;  // each gate's metric that the candidate has, in order
  std::optional<AliasHolder> holder;  // the alias holder that was compared (with a value)
  std::vector<std::string> failed;    // one line per failed gate or comparison
  bool promote() const { return failed.empty(); }
};

// The best of `rounds` on criteria.metric (ties: the earliest in `rounds`;
// rounds without the metric, or with NaN, are skipped); nullptr if none has it.
const MlflowRun* best_round(const std::vector<MlflowRun>& rounds, const PromotionCriteria& criteria);

// Error(kNotFound) when no round has the metric ("no round of <what> has
// metric ..."), Error(kFailedPrecondition) when the best round carries no
// versioning lineage. A failed gate or a holder not beaten is not an error:
// it is in `failed`. A holder equal to the candidate is not beaten.
PromotionDecision decide_promotion(const std::vector<MlflowRun>& rounds, const std::string& what,
                                   const PromotionCriteria& criteria, const std::optional<AliasHolder>& holder);

// The holder of `alias` on registered model `model` with its run's `metric`;
// nullopt when the model or the alias does not exist (no champion yet).
// Other MLflow errors are thrown.
std::optional<AliasHolder> current_holder(MlflowClient& client, const std::string& model, const std::string& alias,
                                          const std::string& metric);

// A metric value as promote prints it (%.6g).
std::string promotion_number(double value);

}  // namespace fedtrack
