// The `fedtrack` command line.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "fedtrack/connectors/exit_status.h"
#include "fedtrack/connectors/export_command.h"
#include "fedtrack/connectors/promote_command.h"
#include "fedtrack/connectors/run_command.h"
#include "fedtrack/connectors/tracking_commands.h"
#include "fedtrack/connectors/versioning_commands.h"
#include "fedtrack/core/text.h"

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
  run->add_option("job", run_args.job_path, "Job file (YAML or JSON)");  // a missing file: exit 3, not a usage error
  run->add_option("--set", run_args.overrides,
                  "Override a job key, e.g. --set train.lr=0.01 (repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--json", run_args.json, "Print one JSON report as the last line of stdout");
  run->add_option("--model-out", run_args.model_out,
                  "Write the final global model here (a LibTorch checkpoint)");
  run->add_flag("--resume", run_args.resume,
                "Continue an interrupted job from its state file (server.state, default NAME.state.db)");
  run->add_flag("--require-tracking", run_args.require_tracking,
                "Fail (exit 4 / 6) unless MLflow takes the job's records: tracking.required = true");

  fedtrack::ServerArgs server_args;
  CLI::App* server = app.add_subcommand(
      "server", "Serve a federated job to real clients over the network (one `fedtrack client` per site)");
  server->add_option("job", server_args.job_path, "Job file (YAML or JSON)");
  server->add_option("--set", server_args.overrides, "Override a job key (repeatable)")->allow_extra_args(false);
  server->add_option("--listen", server_args.listen, "HOST:PORT to listen on")->capture_default_str();
  server->add_option("--tokens", server_args.tokens, "File of 'name token' lines, one per client")
      ->required()
      ->check(CLI::ExistingFile);
  server->add_option("--tls-cert", server_args.tls_cert, "PEM certificate: serve https")->check(CLI::ExistingFile);
  server->add_option("--tls-key", server_args.tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  server->add_flag("--resume", server_args.resume, "Continue an interrupted job from its state file");
  server->add_flag("--require-tracking", server_args.require_tracking,
                   "Fail (exit 4 / 6) unless MLflow takes the job's records: tracking.required = true");
  server->add_flag("--json", server_args.json, "Print one JSON report as the last line of stdout");
  server->add_option("--model-out", server_args.model_out, "Write the final global model here");

  fedtrack::ClientArgs client_args;
  CLI::App* client = app.add_subcommand(
      "client", "Train at one site: join a `fedtrack server`, fit and evaluate on local data until the job ends");
  client->add_option("--server", client_args.server, "http://HOST:PORT or https://HOST:PORT")->required();
  client->add_option("--token", client_args.token, "This site's token (from the server's tokens file)")->required();
  client->add_option("--data", client_args.data, "This site's data folder (IDX files or data.csv)")->required();
  client->add_option("--tls-ca", client_args.tls_ca, "PEM CA certificate(s) to trust for https")->check(CLI::ExistingFile);
  client->add_option("--give-up-after", client_args.give_up_after,
                     "Exit non-zero after this many seconds without reaching the server")
      ->capture_default_str();
  client->add_option("--threads", client_args.threads, "LibTorch threads (0 = all cores)")->capture_default_str();
  client->add_option("--max-message-mb", client_args.max_message_mb, "Largest message accepted from the server")
      ->capture_default_str();

  fedtrack::PartitionArgs partition_args;
  CLI::App* part = app.add_subcommand(
      "partition", "Write the job's partition of its training data as one folder per client (demos and tests)");
  part->add_option("job", partition_args.job_path, "Job file (YAML or JSON)");
  part->add_option("--set", partition_args.overrides, "Override a job key (repeatable)")->allow_extra_args(false);
  part->add_option("--out", partition_args.out, "Folder for the shards: OUT/0 .. OUT/<count-1>")->required();

  fedtrack::RunsArgs runs_args;
  CLI::App* runs = app.add_subcommand("runs", "List the jobs and rounds in the local tracking journal");
  runs->add_option("--journal", runs_args.journal, "Journal file")->capture_default_str();
  runs->add_flag("--json", runs_args.json, "Print one JSON array instead of text");

  fedtrack::SyncArgs sync_args;
  CLI::App* sync = app.add_subcommand(
      "sync", "Send the journal's pending tracking writes to an MLflow server, in order, exactly once");
  sync->add_option("--journal", sync_args.journal, "Journal file")->capture_default_str();
  sync->add_option("--tracking-uri", sync_args.tracking_uri,
                   "MLflow server (default: MLFLOW_TRACKING_URI)");

  fedtrack::RestoreArgs restore_args;
  CLI::App* restore = app.add_subcommand(
      "restore", "Give back the exact bytes of a versioned model at any git revision");
  restore->add_option("--repo", restore_args.repo,
                     "The model repository (default: the one around the current folder, else fedtrack-models)");
  restore->add_option("--rev", restore_args.rev, "Any git revision: sha, short sha, tag, branch, HEAD~2");
  restore->add_option("--model-name", restore_args.model_name, "A promoted model (with --alias, --stage or --version)");
  restore->add_option("--alias", restore_args.alias, "MLflow alias of the promoted model, e.g. champion");
  restore->add_option("--stage", restore_args.stage, "GTO stage of the promoted model, e.g. prod");
  restore->add_option("--version", restore_args.version, "GTO version of the promoted model, e.g. v0.0.3");
  restore->add_option("--tracking-uri", restore_args.tracking_uri, "MLflow server for --alias (default: MLFLOW_TRACKING_URI)");
  restore->add_option("--path", restore_args.path,
                      "The tracked file, relative to the repository root (its .dvc file is PATH.dvc)")
      ->capture_default_str();
  restore->add_option("--out", restore_args.out, "Where to write the model")->required();

  fedtrack::HistoryArgs history_args;
  CLI::App* history = app.add_subcommand("history", "List the versioned round commits of a model repository");
  history->add_option("--repo", history_args.repo,
                     "The model repository (default: the one around the current folder, else fedtrack-models)");
  history->add_flag("--json", history_args.json, "Print one JSON object instead of text");

  fedtrack::PromoteArgs promote_args;
  CLI::App* promote = app.add_subcommand(
      "promote", "Gate a job's best round on MLflow metrics and promote it (registry alias + GTO tags)");
  promote->add_option("--experiment", promote_args.experiment, "MLflow experiment of the job")->required();
  promote->add_option("--model-name", promote_args.model_name,
                      "Registered model / GTO artifact name (default: the model's artifact in the round's dvc.yaml)");
  promote->add_option("--repo", promote_args.repo,
                     "The model repository: a folder or a git URL (default: the one the candidate run records)");
  promote->add_option("--path", promote_args.path, "The model inside the repository")->capture_default_str();
  promote->add_option("--job", promote_args.job_id, "Job id (default: the latest finished job)");
  promote->add_option("--run", promote_args.run_id, "A job's run id, or one round's run id");
  promote->add_option("--metric", promote_args.metric, "Metric that picks the best round")->capture_default_str();
  promote->add_option("--mode", promote_args.mode, "max or min")->capture_default_str();
  promote->add_option("--require", promote_args.require, "A gate, e.g. 'eval_accuracy>=0.85' (repeatable)")
      ->allow_extra_args(false);
  promote->add_option("--better-than", promote_args.better_than, "Must beat the holder of this alias on --metric");
  promote->add_option("--alias", promote_args.alias, "Alias to move to the new version")->capture_default_str();
  promote->add_option("--stage", promote_args.stage, "GTO stage to assign, e.g. prod");
  promote->add_option("--tracking-uri", promote_args.tracking_uri, "MLflow server (default: MLFLOW_TRACKING_URI)");
  promote->add_option("--dotenv", promote_args.dotenv, "Also write the outputs as KEY=value (GitLab dotenv)");
  promote->add_flag("--dry-run", promote_args.dry_run, "Evaluate the gates, change nothing");
  promote->add_flag("--json", promote_args.json, "Print the outputs as one JSON object");

  fedtrack::ExportArgs export_args;
  CLI::App* exporter = app.add_subcommand(
      "export", "Write a versioned round or a checkpoint as an ONNX model (raw input, scaling inside, logits out)");
  exporter->add_option("--rev", export_args.rev, "A git revision of the model repository (sha, tag, branch, HEAD~2)");
  exporter->add_option("--repo", export_args.repo,
                       "The model repository (default: the one around the current folder, else fedtrack-models)");
  exporter->add_option("--path", export_args.path, "The model inside the repository")->capture_default_str();
  exporter->add_option("--checkpoint", export_args.checkpoint, "Or a checkpoint file (fedtrack run --model-out, restore)");
  exporter->add_option("--model-name", export_args.model_name, "Or a promoted model (with --alias, --stage or --version)");
  exporter->add_option("--alias", export_args.alias, "MLflow alias of the promoted model, e.g. champion");
  exporter->add_option("--stage", export_args.stage, "GTO stage of the promoted model, e.g. prod");
  exporter->add_option("--version", export_args.version, "GTO version of the promoted model, e.g. v0.0.3");
  exporter->add_option("--tracking-uri", export_args.tracking_uri, "MLflow server for --alias (default: MLFLOW_TRACKING_URI)");
  exporter->add_option("--format", export_args.format, "onnx, or onnx-int8 (int8 weights, per-channel scales)")->capture_default_str();
  exporter->add_option("--out", export_args.out, "The .onnx file to write")->required();
  exporter->add_option("--opset", export_args.opset, "ONNX opset, 13..17")->capture_default_str();

  // An unknown command is named as such (CLI11 would only say that a
  // subcommand is required).
  std::string commands;
  bool known = false;
  for (const CLI::App* sub : {run, server, client, part, runs, sync, restore, history, promote, exporter}) {
    commands += (commands.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc >= 2 && sub->check_name(argv[1]));
  }
  if (argc < 2) {
    std::cerr << "fedtrack: a command is required; commands: " << commands << std::endl;
    return 2;
  }
  if (argv[1][0] != '-' && !known) {
    std::cerr << "fedtrack: unknown command '" << fedtrack::to_valid_utf8(argv[1]) << "'; commands: " << commands << std::endl;
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "fedtrack: " << fedtrack::to_valid_utf8(e.what()) << " (see fedtrack --help)" << std::endl;
    return 2;
  }
  // Every command runs through the one error edge: one exit table, one line.
  return fedtrack::run_guarded(std::cerr, [&]() -> int {
    if (run->parsed()) {
      fedtrack::install_stop_handlers();
      return fedtrack::run_command(run_args, std::cout, std::cerr);
    }
    if (server->parsed()) {
      fedtrack::install_stop_handlers();
      return fedtrack::server_command(server_args, std::cout, std::cerr);
    }
    if (client->parsed()) {
      fedtrack::install_stop_handlers();
      return fedtrack::client_command(client_args, std::cout, std::cerr);
    }
    if (part->parsed()) return fedtrack::partition_command(partition_args, std::cout, std::cerr);
    if (promote->parsed()) return fedtrack::promote_command(promote_args, std::cout, std::cerr);
    if (restore->parsed()) return fedtrack::restore_command(restore_args, std::cout, std::cerr);
    if (exporter->parsed()) return fedtrack::export_command(export_args, std::cout, std::cerr);
    if (history->parsed()) return fedtrack::history_command(history_args, std::cout, std::cerr);
    if (runs->parsed()) return fedtrack::runs_command(runs_args, std::cout, std::cerr);
    if (sync->parsed()) return fedtrack::sync_command(sync_args, std::cout, std::cerr);
    throw fedtrack::Error::invalid_argument("a command is required; commands: " + commands);
  }, client->parsed() ? "fedtrack client: " : "fedtrack: ");
}
