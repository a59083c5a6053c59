#include "fedtrack/connectors/export_command.h"

#include <unistd.h>

#include <filesystem>
#include <ostream>
#include <sstream>

#include "fedtrack/connectors/versioning_commands.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "fedtrack/core/onnx_export.h"
#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"

namespace fedtrack {

namespace {

// The folder --out goes into must exist: a typo in it is an error, not a
// folder fedtrack creates.
void check_out_folder(const std::string& out) {
  namespace fs = std::filesystem;
  if (out.empty()) throw Error::invalid_argument("--out is required");
  std::error_code ec;
  if (fs::is_directory(out, ec)) throw Error::invalid_argument("--out " + out + " is a folder; name the .onnx file");
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw Error::invalid_argument("--out " + out + ": folder " + parent.string() + " does not exist");
  }
}

// The round's checkpoint bytes, read through a temporary file beside --out.
std::string restore_bytes(const std::string& repo, const std::string& rev, const std::string& path,
                          const std::string& out, RestoreResult& result) {
  const std::string tmp = out + ".fedtrack-export-" + std::to_string(::getpid());
  std::error_code ignored;
  try {
    result = restore_model(repo, rev, path, tmp);
    std::string bytes = read_file(tmp);
    std::filesystem::remove(tmp, ignored);
    return bytes;
  } catch (...) {
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace

int export_command(const ExportArgs& args, std::ostream& out, std::ostream& /*err*/) {
  if (args.format != "onnx" && args.format != "onnx-int8") {
    throw Error::invalid_argument("--format " + args.format + ": supported: onnx, onnx-int8");
  }
  if (!args.rev.empty() + !args.checkpoint.empty() + !args.model_name.empty() != 1) {
    throw Error::invalid_argument("give exactly one of --rev, --checkpoint, --model-name");
  }
  if (!args.checkpoint.empty() && !args.repo.empty()) throw Error::invalid_argument("--repo goes with --rev, not --checkpoint");
  const int ways = !args.alias.empty() + !args.stage.empty() + !args.version.empty();
  if (!args.model_name.empty() && ways != 1) {
    throw Error::invalid_argument("--model-name needs exactly one of --alias, --stage, --version");
  }
  if (args.model_name.empty() && ways != 0) throw Error::invalid_argument("--alias, --stage and --version need --model-name");
  check_out_folder(args.out);

  OnnxExportOptions options;
  options.opset = args.opset;
  options.int8_weights = args.format == "onnx-int8";
  std::string bytes, what;
  if (!args.checkpoint.empty()) {
    bytes = read_file(args.checkpoint);
    options.source = args.checkpoint;
    what = args.checkpoint;
  } else if (!args.model_name.empty()) {
    // fedtrack restore resolves the promotion and checks the recorded md5.
    RestoreArgs r;
    r.repo = find_model_repository(args.repo, args.path);
    r.path = args.path;
    r.out = args.out + ".fedtrack-export-" + std::to_string(::getpid());
    r.model_name = args.model_name;
    r.alias = args.alias;
    r.stage = args.stage;
    r.version = args.version;
    r.tracking_uri = args.tracking_uri;
    std::ostringstream said;
    std::error_code ignored;
    try {
      restore_command(r, said, said);
      bytes = read_file(r.out);
      std::filesystem::remove(r.out, ignored);
    } catch (...) {
      std::filesystem::remove(r.out, ignored);
      throw;
    }
    const std::string how = !args.alias.empty() ? "alias " + args.alias
                            : !args.stage.empty() ? "stage " + args.stage
                                                  : "version " + args.version;
    options.source = args.model_name + " " + how;
    what = options.source;
    options.metadata.push_back({"fedtrack.registered_model", args.model_name});
    options.metadata.push_back({"fedtrack.promotion", how});
    const std::string md5 = md5_hex(bytes);
    options.metadata.push_back({"fedtrack.dvc_md5", md5});
    for (const HistoryEntry& e : model_history(r.repo)) {  // the round that holds these bytes
      if (e.md5 != md5) continue;
      options.metadata.push_back({"fedtrack.git_commit", e.commit});
      options.metadata.push_back({"fedtrack.job_id", e.job_id});
      options.metadata.push_back({"fedtrack.round", std::to_string(e.round)});
      options.metadata.push_back({"fedtrack.tag", e.tag});
      break;
    }
  } else {
    const std::string repo = find_model_repository(args.repo, args.path);
    RestoreResult r;
    bytes = restore_bytes(repo, args.rev, args.path, args.out, r);
    options.source = args.path + " at " + args.rev;
    what = options.source + " (commit " + r.commit.substr(0, 12) + ")";
    options.metadata.push_back({"fedtrack.git_commit", r.commit});
    options.metadata.push_back({"fedtrack.dvc_md5", r.md5});
    for (const HistoryEntry& e : model_history(repo)) {
      if (e.commit != r.commit) continue;
      options.metadata.push_back({"fedtrack.job_id", e.job_id});
      options.metadata.push_back({"fedtrack.round", std::to_string(e.round)});
      options.metadata.push_back({"fedtrack.tag", e.tag});
      break;
    }
  }
  const OnnxExport model = export_onnx(bytes, options);
  write_file_atomically(args.out, model.bytes);

  std::string shape;
  for (auto d : model.card.input_shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  const bool csv = model.card.data_format == "csv";
  out << "exported " << what << " to " << args.out << " (ONNX opset " << args.opset
      << (options.int8_weights ? ", int8 weights" : "") << ", " << model.bytes.size()
      << " bytes, onnx::checker passed): model " << model.card.model << ", input [N, " << shape << "] "
      << (csv ? "csv feature columns" : "pixels in [0, 1]") << ", scaled inside the graph, output logits [N, "
      << model.card.num_classes << "]" << std::endl;
  return 0;
}

}  // namespace fedtrack
