// Writes the encoder-made part of the seed corpus (tests/fuzz/make_corpus.py
// adds the seeds taken from a real job's files): FTPM encodings of a real
// LibTorch module, the network messages with the headers the server and the
// client build, and state records. Usage: fuzz_seeds OUT_DIR
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "byte_codec.h"
#include "fedtrack/core/compression.h"
#include "fedtrack/core/parameters.h"
#include "server_state.h"
#include "fedtrack/core/state_record.h"
#include "wire.h"

namespace {

namespace fs = std::filesystem;
using namespace fedtrack;

// A small model with every kind of entry a real one has: nested parameters,
// BatchNorm float buffers and its int64 counter.
struct TinyImpl : torch::nn::Module {
  TinyImpl()
      : fc1(register_module("fc1", torch::nn::Linear(5, 3))),
        bn(register_module("bn", torch::nn::BatchNorm1d(3))),
        fc2(register_module("fc2", torch::nn::Linear(3, 2))) {}
  torch::Tensor forward(torch::Tensor x) { return fc2(bn(fc1(x))); }
  torch::nn::Linear fc1;
  torch::nn::BatchNorm1d bn;
  torch::nn::Linear fc2;
};
TORCH_MODULE(Tiny);

void write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
  std::printf("%s/%s (%zu bytes)\n", dir.c_str(), name.c_str(), bytes.size());
}

Parameters tiny_model(int seed) {
  torch::manual_seed(seed);
  Tiny net;
  net->train();
  net->forward(torch::randn({4, 5}));  // moves the running stats and the counter
  return parameters_from_module(*net);
}

// One tensor per dtype the encoding knows, a scalar and an empty tensor.
Parameters every_dtype() {
  Parameters p;
  const std::pair<const char*, torch::Tensor> entries[] = {
      {"f32", torch::arange(6, torch::kFloat).reshape({2, 3})},
      {"f64", torch::tensor({1.5, -0.25}, torch::kDouble)},
      {"i64", torch::tensor({std::int64_t{1} << 40}, torch::kLong)},
      {"i32", torch::tensor({-7}, torch::kInt)},
      {"u8", torch::tensor({255}, torch::kByte)},
      {"i8", torch::tensor({-128}, torch::kChar)},
      {"i16", torch::tensor({300}, torch::kShort)},
      {"bool", torch::tensor({true, false})},
      {"f16", torch::tensor({0.5}, torch::kHalf)},
      {"bf16", torch::tensor({2.0}, torch::kBFloat16)},
      {"scalar", torch::tensor(3.0f)},
      {"empty", torch::empty({0, 3})},
  };
  for (const auto& [name, t] : entries) {
    p.names.push_back(name);
    p.tensors.push_back(t.contiguous());
  }
  p.buffer_begin = 8;
  return p;
}

ConfigRecord job_header() {  // the header net::encode_joined (core/src/net/protocol.h) writes
  return {{"job_id", std::string("loans-fedavg-20261201T010912Z-3cace1")},
          {"job_name", std::string("loans-fedavg")},
          {"model", std::string("mlp")},
          {"format", std::string("csv")},
          {"feature_shape", std::string("5")},
          {"num_classes", std::int64_t{2}},
          {"val_fraction", 0.1},
          {"scaling_mean", std::string("43.1,61234.5,0.31,7.2,0.4")},
          {"scaling_stddev", std::string("12.2,20345.1,0.12,4.4,0.8")},
          {"classes", std::string("approve\x1f" "decline")},
          {"label", std::string("decision")},
          {"heartbeat_seconds", 6.0},
          {"max_message_mb", std::int64_t{1024}},
          {"poll_seconds", 2.0},
          {"client", std::string("bank-a")},
          {"session", std::string("9f1c2d3e4b5a69788796a5b4c3d2e1f0")},
          {"data_seed", std::int64_t{4611686018427387}}};
}

// Regression seed (issue 11, item 6): a float tensor of shape
// [2^62 + 1, 4], whose byte count wraps past 2^64 to 16, carrying 16 bytes.
std::string wrapping_shape() {
  ByteWriter body;
  body.put<std::uint32_t>(1);  // tensor count
  body.put<std::uint32_t>(1);  // buffer_begin
  body.put<std::uint16_t>(1);
  body.append("w");
  body.put<std::uint8_t>(1);  // float32
  body.put<std::uint8_t>(2);  // rank
  body.put<std::int64_t>((std::int64_t{1} << 62) + 1);
  body.put<std::int64_t>(4);
  body.put<std::uint64_t>(16);
  body.append(std::string(16, '\0'));
  ByteWriter w;
  w.append("FTPM");
  w.put<std::uint16_t>(1);
  w.put<std::uint16_t>(0);
  w.put<std::uint64_t>(body.str().size());
  w.append(body.str());
  return w.take();
}

// Regression seed: a round summary whose round number does not fit an int
// (std::stoi threw std::out_of_range instead of a corruption error).
std::string summary_with_huge_round() {
  fedtrack::RoundSummary s;
  s.round = 3;
  s.total_rounds = 5;
  s.metrics = {{"eval_loss", 0.5}};
  fedtrack::ClientRoundStat c;
  c.client_id = "bank-a";
  c.num_examples = 563;
  c.fit_metrics = {{"train_loss", 0.3}};
  c.data_fingerprint = "d799cb199e585af2046e843e50d227c67dbd57383ac62b4b7c91f88c8b3d1d59";
  c.bytes_down = c.bytes_up = 138982;
  s.clients.push_back(c);
  StateRecord r = decode_state(encode_round_summary(s));
  r["round"] = "99999999999";
  return encode_state(r);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  const std::string model = encode_parameters(tiny_model(1));
  const std::string update = encode_parameters(tiny_model(2));

  write(out / "parameters", "tiny-model.ftpm", model);
  write(out / "parameters", "every-dtype.ftpm", encode_parameters(every_dtype()));
  write(out / "parameters", "no-tensors.ftpm", encode_parameters(Parameters{}));
  write(out / "parameters", "regression-shape-wraps-2-64.ftpm", wrapping_shape());

  const std::string job_id = "loans-fedavg-20261201T010912Z-3cace1";
  const ConfigRecord task = {{"job_id", job_id}, {"task_id", std::int64_t{12}}, {"round", std::int64_t{3}},
                             {"config/epochs", std::int64_t{2}}, {"config/lr", 0.05},
                             {"config/optimizer", std::string("sgd")}, {"config/proximal", false}};
  const ConfigRecord reply = {{"job_id", job_id}, {"task_id", std::int64_t{12}}, {"round", std::int64_t{3}}};
  ConfigRecord fit = reply;
  fit["num_examples"] = std::int64_t{563};
  fit["data_fingerprint"] = std::string("d799cb199e585af2046e843e50d227c67dbd57383ac62b4b7c91f88c8b3d1d59");
  fit["metric/train_loss"] = 0.3469700334233035;
  fit["metric/train_accuracy"] = 0.8472468916518651;
  fit["train_seconds"] = 0.0226;
  ConfigRecord evaluate = reply;
  evaluate["num_examples"] = std::int64_t{62};
  evaluate["loss"] = 0.8110078996227633;
  evaluate["metric/accuracy"] = 0.7741935483870968;
  ConfigRecord failed = reply;
  failed["error"] = std::string("data: examples/csv-tabular/loans.csv:17: column 'income' is not a number");

  write(out / "wire", "joined.ftms", encode_message({MessageKind::kJoined, job_header(), ""}));
  write(out / "wire", "fit-task.ftms", encode_message({MessageKind::kFitTask, task, model}));
  write(out / "wire", "evaluate-task.ftms", encode_message({MessageKind::kEvaluateTask, task, model}));
  write(out / "wire", "wait.ftms", encode_message({MessageKind::kWait, {{"job_id", job_id}}, ""}));
  write(out / "wire", "done.ftms", encode_message({MessageKind::kDone, {{"job_id", job_id}}, ""}));
  write(out / "wire", "fit-result.ftms", encode_message({MessageKind::kFitResult, fit, update}));
  write(out / "wire", "evaluate-result.ftms", encode_message({MessageKind::kEvaluateResult, evaluate, ""}));
  write(out / "wire", "task-failed.ftms", encode_message({MessageKind::kTaskFailed, failed, ""}));
  // Compression (docs/compression.md): the join answer with the job's codecs, a
  // task with a compressed model and a fit result with a compressed update.
  ConfigRecord joined_compressed = job_header();
  joined_compressed["compression_uplink"] = std::string("topk");
  joined_compressed["compression_downlink"] = std::string("int8");
  joined_compressed["topk_fraction"] = 0.01;
  joined_compressed["error_feedback"] = true;
  joined_compressed["compression_seed"] = std::int64_t{4242};
  write(out / "wire", "joined-compressed.ftms", encode_message({MessageKind::kJoined, joined_compressed, ""}));
  {
    const std::vector<float> values = {0.5f, -0.25f, 0.125f, 2.0f, -1.0f, 0.0f};
    const std::vector<compression::FloatSpan> spans = {{values.data(), 4}, {values.data() + 4, 2}};
    ConfigRecord compressed_task = task;
    compressed_task["encoding"] = std::string("ftcu-model");
    write(out / "wire", "fit-task-compressed.ftms",
          encode_message({MessageKind::kFitTask, compressed_task, compression::encode(spans, {compression::Codec::kInt8})}));
    ConfigRecord compressed_fit = fit;
    compressed_fit["encoding"] = std::string("ftcu-update");
    compression::EncodeOptions topk{compression::Codec::kTopk};
    topk.topk_fraction = 0.5;
    write(out / "wire", "fit-result-compressed.ftms",
          encode_message({MessageKind::kFitResult, compressed_fit, compression::encode(spans, topk)}));
  }

  // A wrapper strategy's state: its own entries plus the inner one's, nested.
  StateRecord inner = {{"moment/m", update}, {"round", "3"}};
  StateRecord state = {{"clipping_norm", encode_f64(0.75)}, {"noise_rng", encode_rng(std::mt19937_64(7))}};
  nest(state, "inner/", inner);
  write(out / "state", "nested-strategy.ftst", encode_state(state));
  write(out / "state", "empty.ftst", encode_state({}));
  write(out / "state", "regression-round-out-of-range.ftst", summary_with_huge_round());

  // Compressed updates: a layout byte (compression_fuzz.cpp's kLayouts) and
  // an FTCU payload of every codec for layouts 0 ({8, 2}) and 2 ({300, 17, 1}).
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (const std::uint8_t layout : {std::uint8_t{0}, std::uint8_t{2}}) {
    const std::vector<std::size_t> sizes = layout == 0 ? std::vector<std::size_t>{8, 2} : std::vector<std::size_t>{300, 17, 1};
    std::vector<std::vector<float>> tensors;
    std::vector<compression::FloatSpan> spans;
    for (auto n : sizes) {
      tensors.emplace_back(n);
      for (auto& x : tensors.back()) x = normal(rng);
    }
    for (const auto& t : tensors) spans.push_back({t.data(), t.size()});
    for (auto codec : {compression::Codec::kRaw, compression::Codec::kFp16, compression::Codec::kInt8,
                       compression::Codec::kTopk}) {
      compression::EncodeOptions options{codec};
      options.topk_fraction = 0.1;
      options.seed = 42;
      write(out / "compression", "layout" + std::to_string(layout) + "-" + compression::codec_name(codec) + ".ftcu",
            std::string(1, static_cast<char>(layout)) + compression::encode(spans, options));
    }
  }
  return 0;
}
