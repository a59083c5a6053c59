// The `fedtrack` command line.
#include <CLI/CLI.hpp>

#include <iostream>

#include "fedtrack/connectors/run_command.h"

#ifndef FEDTRACK_VERSION
#define FEDTRACK_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  CLI::App app{"fedtrack — federated learning with the MLOps built in", "fedtrack"};
  app.set_version_flag("--version", std::string("fedtrack ") + FEDTRACK_VERSION);
  app.require_subcommand(1);

  fedtrack::RunArgs run_args;
  CLI::App* run = app.add_subcommand(
      "run", "Run a federated job in-process (N virtual clients). Without JOB, runs the embedded "
             "defaults: 10 clients, Dirichlet(0.5) Fashion-MNIST, FedAvg, an MLP.");
  run->add_option("job", run_args.job_path, "Job file (YAML or JSON)")->check(CLI::ExistingFile);
  run->add_option("--set", run_args.overrides,
                  "Override a job key, e.g. --set train.lr=0.01 (repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--json", run_args.json, "Print one JSON report as the last line of stdout");
  run->add_option("--model-out", run_args.model_out,
                  "Write the final global model here (a LibTorch checkpoint)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (run->parsed()) {
    fedtrack::install_stop_handlers();
    return fedtrack::run_command(run_args, std::cout, std::cerr);
  }
  return 2;
}
