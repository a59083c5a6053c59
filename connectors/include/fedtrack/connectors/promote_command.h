// `fedtrack promote`: gate a job's best round on MLflow metrics and promote
// it — an MLflow registered-model version with an alias, and GTO tags in the
// model repository — with outputs a CI pipeline reads. Torch-free.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fedtrack {

struct PromoteArgs {
  std::string experiment;
  std::string model_name;  // "" = the artifact dvc.yaml declares for `path` at the candidate's commit
  std::string repo;  // a folder or a git URL; "" = the repository the candidate run records, else fedtrack-models
  std::string path = "models/global.pt";
  std::string job_id;        // default: the latest finished job in the experiment
  std::string run_id;        // a job's run or one round's run
  std::string metric = "eval_accuracy";
  std::string mode = "max";  // max | min
  std::vector<std::string> require;  // "eval_accuracy>=0.85"
  std::string better_than;   // an alias the candidate must beat on `metric`
  std::string alias = "champion";
  std::string stage;         // GTO stage to assign, e.g. prod
  std::string tracking_uri;  // default MLFLOW_TRACKING_URI
  std::string dotenv;        // write KEY=value lines here (GitLab dotenv report)
  bool dry_run = false;
  bool json = false;
};

// 0 promoted (or, with --dry-run, would be); 3 a gate did not hold (nothing
// changed). Any other failure throws fedtrack::Error once the CI outputs are
// written (the CLI maps it to its exit status: 3 unknown experiment, ...).
int promote_command(const PromoteArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fedtrack
