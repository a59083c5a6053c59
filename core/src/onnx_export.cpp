#include "fedtrack/core/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>
#include <cstdio>

#include "fedtrack/core/error.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/parameters.h"

namespace fedtrack {
namespace {

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string out;
  for (auto d : dims) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + json_string(items[i]);
  return out + "]";
}

std::string numbers_list(const std::vector<double>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", items[i]);
    out += (i ? "," : "") + std::string(buf);
  }
  return out + "]";
}

// Appends nodes to a graph, naming every value uniquely.
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, std::string current, int rank)
      : graph_(graph), current_(std::move(current)), rank_(rank) {}

  const std::string& current() const { return current_; }
  int rank() const { return rank_; }
  const std::vector<std::string>& ops() const { return ops_; }

  std::string initializer(const std::string& hint, const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
    onnx::TensorProto* init = graph_.add_initializer();
    const std::string name = hint + "_" + std::to_string(graph_.initializer_size());
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : c.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float)));
    return name;
  }

  // A weight: float, or with int8 on, int8 values with one float scale per
  // output channel along `axis` (symmetric, zero point 0) that a
  // DequantizeLinear node turns back to float.
  std::string weight(const std::string& hint, const torch::Tensor& t, std::int64_t axis) {
    if (!int8_) return initializer(hint, t);
    const torch::Tensor w = t.detach().to(torch::kFloat32).contiguous();
    std::vector<std::int64_t> reduce;
    for (std::int64_t d = 0; d < w.dim(); ++d) {
      if (d != axis) reduce.push_back(d);
    }
    torch::Tensor scale = w.abs().amax(reduce) / 127.0;
    scale = torch::where(scale > 0, scale, torch::ones_like(scale));
    std::vector<std::int64_t> view(w.dim(), 1);
    view[axis] = w.size(axis);
    const torch::Tensor q = torch::round(w / scale.view(view)).clamp(-127, 127).to(torch::kInt8).contiguous();
    const std::string name = hint + "_q_" + std::to_string(graph_.initializer_size());
    onnx::TensorProto* init = graph_.add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::INT8);
    for (auto d : q.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(q.data_ptr()), q.numel()));
    const std::string scale_name = initializer(hint + "_scale", scale);
    onnx::TensorProto* zero = graph_.add_initializer();
    zero->set_name(hint + "_zero_" + std::to_string(graph_.initializer_size()));
    zero->set_data_type(onnx::TensorProto::INT8);
    zero->add_dims(w.size(axis));
    zero->set_raw_data(std::string(static_cast<std::size_t>(w.size(axis)), '\0'));
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type("DequantizeLinear");
    n->set_name("DequantizeLinear_" + std::to_string(graph_.node_size()));
    n->add_input(name);
    n->add_input(scale_name);
    n->add_input(zero->name());
    n->add_output(n->name() + "_out");
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(axis);
    ops_.push_back("DequantizeLinear");
    return n->output(0);
  }
  void set_int8(bool on) { int8_ = on; }

  onnx::NodeProto* node(const std::string& op, std::vector<std::string> inputs, const std::string& out_name = "") {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(graph_.node_size()));
    for (const auto& i : inputs) n->add_input(i);
    current_ = out_name.empty() ? n->name() + "_out" : out_name;
    n->add_output(current_);
    ops_.push_back(op);
    return n;
  }

  void set_rank(int r) { rank_ = r; }

 private:
  onnx::GraphProto& graph_;
  std::string current_;
  int rank_;
  std::vector<std::string> ops_;
  bool int8_ = false;
};

void ints_attr(onnx::NodeProto* n, const std::string& name, const std::vector<std::int64_t>& v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void int_attr(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void float_attr(onnx::NodeProto* n, const std::string& name, float v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

Error unsupported(const std::string& model, const std::string& path, const std::string& what) {
  return Error::invalid_argument("model '" + model + "': module " + path + " (" + what +
                                 ") cannot be exported to ONNX; supported: Linear, Conv2d, ReLU, MaxPool2d, "
                                 "AvgPool2d, Flatten, BatchNorm1d/2d, Dropout, Sequential");
}

void relu(GraphBuilder& g) { g.node("Relu", {g.current()}); }

void flatten(GraphBuilder& g) {
  int_attr(g.node("Flatten", {g.current()}), "axis", 1);
  g.set_rank(2);
}

void max_pool(GraphBuilder& g, std::vector<std::int64_t> kernel, std::vector<std::int64_t> stride,
              std::vector<std::int64_t> pad, std::vector<std::int64_t> dilation, bool ceil_mode) {
  onnx::NodeProto* n = g.node("MaxPool", {g.current()});
  ints_attr(n, "kernel_shape", kernel);
  ints_attr(n, "strides", stride);
  ints_attr(n, "pads", {pad[0], pad[1], pad[0], pad[1]});
  ints_attr(n, "dilations", dilation);
  int_attr(n, "ceil_mode", ceil_mode ? 1 : 0);
}

void emit(GraphBuilder& g, torch::nn::Module& m, const std::string& path, const std::string& model);

void linear(GraphBuilder& g, torch::nn::LinearImpl& l, const std::string& path) {
  // x @ W^T + b: the same for any rank, as torch's Linear.
  const std::string w = g.weight(path + "_weight_t", l.weight.t(), 1);
  g.node("MatMul", {g.current(), w});
  if (l.bias.defined() && l.bias.numel() > 0) g.node("Add", {g.current(), g.initializer(path + "_bias", l.bias)});
}

void emit(GraphBuilder& g, torch::nn::Module& m, const std::string& path, const std::string& model) {
  if (auto* s = dynamic_cast<torch::nn::SequentialImpl*>(&m)) {
    for (const auto& child : s->named_children()) emit(g, *child.value(), path + "." + child.key(), model);
  } else if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(&m)) {
    linear(g, *l, path);
  } else if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(&m)) {
    const auto& o = c->options;
    if (g.rank() != 4) throw unsupported(model, path, "Conv2d on a rank-" + std::to_string(g.rank()) + " tensor");
    if (!c10::holds_alternative<torch::ExpandingArray<2>>(o.padding())) throw unsupported(model, path, "Conv2d with 'same'/'valid' padding");
    if (!c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) throw unsupported(model, path, "Conv2d with a padding mode other than zeros");
    const auto pad = *c10::get<torch::ExpandingArray<2>>(o.padding());
    std::vector<std::string> in = {g.current(), g.weight(path + "_weight", c->weight, 0)};
    if (o.bias()) in.push_back(g.initializer(path + "_bias", c->bias));
    onnx::NodeProto* n = g.node("Conv", in);
    ints_attr(n, "kernel_shape", {(*o.kernel_size())[0], (*o.kernel_size())[1]});
    ints_attr(n, "strides", {(*o.stride())[0], (*o.stride())[1]});
    ints_attr(n, "pads", {pad[0], pad[1], pad[0], pad[1]});
    ints_attr(n, "dilations", {(*o.dilation())[0], (*o.dilation())[1]});
    int_attr(n, "group", o.groups());
  } else if (dynamic_cast<torch::nn::ReLUImpl*>(&m)) {
    relu(g);
  } else if (auto* p = dynamic_cast<torch::nn::MaxPool2dImpl*>(&m)) {
    const auto& o = p->options;
    max_pool(g, {(*o.kernel_size())[0], (*o.kernel_size())[1]}, {(*o.stride())[0], (*o.stride())[1]},
             {(*o.padding())[0], (*o.padding())[1]}, {(*o.dilation())[0], (*o.dilation())[1]}, o.ceil_mode());
  } else if (auto* a = dynamic_cast<torch::nn::AvgPool2dImpl*>(&m)) {
    const auto& o = a->options;
    if (o.divisor_override()) throw unsupported(model, path, "AvgPool2d with divisor_override");
    onnx::NodeProto* n = g.node("AveragePool", {g.current()});
    ints_attr(n, "kernel_shape", {(*o.kernel_size())[0], (*o.kernel_size())[1]});
    ints_attr(n, "strides", {(*o.stride())[0], (*o.stride())[1]});
    ints_attr(n, "pads", {(*o.padding())[0], (*o.padding())[1], (*o.padding())[0], (*o.padding())[1]});
    int_attr(n, "ceil_mode", o.ceil_mode() ? 1 : 0);
    int_attr(n, "count_include_pad", o.count_include_pad() ? 1 : 0);
  } else if (auto* f = dynamic_cast<torch::nn::FlattenImpl*>(&m)) {
    if (f->options.start_dim() != 1 || (f->options.end_dim() != -1 && f->options.end_dim() != g.rank() - 1)) {
      throw unsupported(model, path, "Flatten other than from dim 1 to the last");
    }
    flatten(g);
  } else if (dynamic_cast<torch::nn::DropoutImpl*>(&m)) {
    // identity at inference
  } else if (dynamic_cast<torch::nn::BatchNorm1dImpl*>(&m) || dynamic_cast<torch::nn::BatchNorm2dImpl*>(&m)) {
    auto* b1 = dynamic_cast<torch::nn::BatchNorm1dImpl*>(&m);
    auto* b2 = dynamic_cast<torch::nn::BatchNorm2dImpl*>(&m);
    const auto& o = b1 ? b1->options : b2->options;
    torch::Tensor weight = b1 ? b1->weight : b2->weight, bias = b1 ? b1->bias : b2->bias;
    torch::Tensor mean = b1 ? b1->running_mean : b2->running_mean, var = b1 ? b1->running_var : b2->running_var;
    if (!o.track_running_stats()) throw unsupported(model, path, "BatchNorm without running statistics");
    if (!o.affine()) {
      weight = torch::ones({o.num_features()});
      bias = torch::zeros({o.num_features()});
    }
    onnx::NodeProto* n = g.node("BatchNormalization",
                                {g.current(), g.initializer(path + "_scale", weight), g.initializer(path + "_bias", bias),
                                 g.initializer(path + "_mean", mean), g.initializer(path + "_var", var)});
    float_attr(n, "epsilon", static_cast<float>(o.eps()));
  } else {
    std::string type = m.name();  // torch::nn::TanhImpl -> torch::nn::Tanh
    if (type.size() > 4 && type.compare(type.size() - 4, 4, "Impl") == 0) type.resize(type.size() - 4);
    throw unsupported(model, path, type);
  }
}

// The built-ins' forward (models.cpp), which applies relu and max-pooling as
// functions rather than modules.
void emit_builtin(GraphBuilder& g, torch::nn::Module& root, const std::string& model) {
  std::map<std::string, std::shared_ptr<torch::nn::Module>> children;
  for (const auto& c : root.named_children()) children[c.key()] = c.value();
  const auto child = [&](const std::string& name) -> torch::nn::Module& {
    auto it = children.find(name);
    if (it == children.end()) throw Error::internal("built-in model '" + model + "' has no module " + name);
    return *it->second;
  };
  const auto lin = [&](const std::string& name) {
    auto* l = dynamic_cast<torch::nn::LinearImpl*>(&child(name));
    if (!l) throw Error::internal("built-in model '" + model + "': " + name + " is not Linear");
    linear(g, *l, name);
  };
  if (model == "mlp") {
    flatten(g);
    lin("fc1"), relu(g), lin("fc2"), relu(g), lin("fc3");
    return;
  }
  // cnn
  for (const char* conv : {"conv1", "conv2"}) {
    emit(g, child(conv), conv, model);
    relu(g);
    max_pool(g, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
  }
  flatten(g);
  lin("fc1"), relu(g), lin("fc2"), relu(g), lin("fc3");
}

// A registered model exports when its only member is a Sequential and its
// forward is that Sequential's (checked on a random batch): then the layers,
// in order, are the model. nullptr otherwise.
torch::nn::SequentialImpl* sequential_body(torch::nn::AnyModule& any, torch::nn::Module& root, const ModelCard& card) {
  const auto children = root.named_children();
  if (children.size() != 1 || !root.named_parameters(false).is_empty() || !root.named_buffers(false).is_empty()) {
    return nullptr;
  }
  auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(children[0].value().get());
  if (!seq) return nullptr;
  std::vector<std::int64_t> shape{2};
  shape.insert(shape.end(), card.input_shape.begin(), card.input_shape.end());
  const torch::Tensor x = torch::randn(shape);
  torch::Tensor whole, body;
  try {
    whole = any.forward(x);
    body = seq->forward(x);
  } catch (const c10::Error& e) {
    throw Error::invalid_argument("model '" + card.model + "' fails on a [" + dims_text(shape) +
                                  "] batch: " + e.what_without_backtrace());
  }
  if (!whole.sizes().equals(body.sizes()) || !torch::equal(whole, body)) {
    throw Error::invalid_argument("model '" + card.model + "': its forward does more than apply its Sequential " +
                                  children[0].key() + ", so its layers alone do not describe it; it cannot be exported");
  }
  return seq;
}

void check_card(const ModelCard& card, const std::string& source) {
  const auto bad = [&](const std::string& why) { return Error::corruption(source + ": model card: " + why); };
  if (card.input_shape.empty()) throw bad("no input shape");
  std::int64_t features = 1;
  for (auto d : card.input_shape) {
    if (d < 1 || d > (1 << 24)) throw bad("input shape " + dims_text(card.input_shape) + " is not positive");
    features *= d;
    // The model is built before its tensors are read: these caps bound what
    // a forged card can make it allocate (3x512x512 images fit).
    if (features > (1 << 20)) throw bad("input shape " + dims_text(card.input_shape) + " is over 2^20 values");
  }
  if (card.num_classes < 2 || card.num_classes > (1 << 16)) {
    throw bad("num_classes " + std::to_string(card.num_classes) + " is outside 2..65536");
  }
  const std::size_t per = card.data_format == "csv" ? card.input_shape.back() : 1;
  if (card.scaling_mean.size() != per || card.scaling_stddev.size() != per) {
    throw bad("scaling has " + std::to_string(card.scaling_mean.size()) + " means and " +
              std::to_string(card.scaling_stddev.size()) + " standard deviations, expected " + std::to_string(per));
  }
  for (double s : card.scaling_stddev) {
    if (!(s > 0) || !std::isfinite(s)) throw bad("a scaling standard deviation is not positive");
  }
  for (double m : card.scaling_mean) {
    if (!std::isfinite(m)) throw bad("a scaling mean is not finite");
  }
  if (!card.class_names.empty() && static_cast<std::int64_t>(card.class_names.size()) != card.num_classes) {
    throw bad(std::to_string(card.class_names.size()) + " class names for " + std::to_string(card.num_classes) +
              " classes");
  }
}

}  // namespace

OnnxExport export_onnx(const std::string& checkpoint_bytes, const OnnxExportOptions& options) {
  const std::string& source = options.source;
  if (options.opset < kMinOnnxOpset || options.opset > kMaxOnnxOpset) {
    throw Error::invalid_argument("--opset " + std::to_string(options.opset) + ": supported " +
                                  std::to_string(kMinOnnxOpset) + ".." + std::to_string(kMaxOnnxOpset));
  }
  const std::optional<ModelCard> found = parse_model_card(checkpoint_bytes, source);
  if (!found) {
    throw Error::failed_precondition(
        source + ": this checkpoint has no model card (written before fedtrack recorded the model name, input shape "
                 "and scaling in checkpoints, or by torch::save): export needs them; run the job again to get one");
  }
  OnnxExport out;
  out.card = *found;
  const ModelCard& card = out.card;
  check_card(card, source);
  torch::nn::AnyModule any;
  try {
    any = make_model(card.model, ModelInput{card.input_shape, card.num_classes});
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error::not_found(source + ": " + e.what() +
                           "; a model registered by your own program exports from it, with fedtrack::export_onnx");
  }
  torch::nn::Module& module = *any.ptr();
  const Parameters layout = parameters_from_module(module);
  Parameters params;
  try {
    params = parse_checkpoint(checkpoint_bytes, layout, source);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) throw;
    throw Error::invalid_argument(source + ": its tensors do not fit model '" + card.model + "' (input " +
                                  dims_text(card.input_shape) + ", " + std::to_string(card.num_classes) +
                                  " classes) that its card names: " + e.what());
  }
  load_parameters(module, params);
  module.eval();

  onnx::ModelProto proto;
  proto.set_ir_version(8);
  proto.set_producer_name("fedtrack");
  proto.set_doc_string("fedtrack model '" + card.model + "': raw input in, logits out");
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name("fedtrack_" + card.model);

  const auto value_info = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<std::int64_t> dims,
                             const std::string& doc) {
    v->set_name(name);
    v->set_doc_string(doc);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = t->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (auto d : dims) shape->add_dim()->set_dim_value(d);
  };
  const bool csv = card.data_format == "csv";
  value_info(graph.add_input(), "input", card.input_shape,
             csv ? "CSV feature columns as stored, in the order of metadata fedtrack.feature_names"
                 : "pixels in [0, 1] (byte / 255), not standardized");
  GraphBuilder g(graph, "input", 1 + static_cast<int>(card.input_shape.size()));
  g.set_int8(options.int8_weights);

  // (x - mean) / stddev, as the loaders scale: one value broadcast over the
  // pixels, or one per column (the last axis).
  const auto column = [](const std::vector<double>& v) {
    return torch::tensor(std::vector<float>(v.begin(), v.end()), torch::kFloat32);
  };
  g.node("Sub", {g.current(), g.initializer("scaling_mean", column(card.scaling_mean))});
  g.node("Div", {g.current(), g.initializer("scaling_stddev", column(card.scaling_stddev))});

  torch::NoGradGuard no_grad;
  if (card.model == "mlp" || card.model == "cnn") {
    emit_builtin(g, module, card.model);
  } else if (auto* seq = sequential_body(any, module, card)) {
    emit(g, *seq, card.model, card.model);
  } else {
    throw Error::invalid_argument("model '" + card.model + "' (" + module.name() +
                                  ") cannot be exported to ONNX: fedtrack reads the layers of the built-ins and of "
                                  "models whose one member is a torch::nn::Sequential that forward applies");
  }
  graph.mutable_node(graph.node_size() - 1)->set_output(0, "logits");
  value_info(graph.add_output(), "logits", {card.num_classes}, "class scores (logits), by class index");
  out.nodes = g.ops();

  const auto meta = [&](const std::string& k, const std::string& v) {
    onnx::StringStringEntryProto* e = proto.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  };
  meta("fedtrack.model", card.model);
  meta("fedtrack.dataset", card.dataset);
  meta("fedtrack.input", csv ? "csv feature columns" : "pixels in [0, 1]");
  meta("fedtrack.input_shape", dims_text(card.input_shape));
  meta("fedtrack.scaling_mean", numbers_list(card.scaling_mean));
  meta("fedtrack.scaling_stddev", numbers_list(card.scaling_stddev));
  if (!card.feature_names.empty()) meta("fedtrack.feature_names", json_list(card.feature_names));
  if (!card.class_names.empty()) meta("class_names", json_list(card.class_names));
  if (options.int8_weights) {
    meta("fedtrack.quantization", "int8 weights of Linear and Conv2d, symmetric, one scale per output channel "
                                  "(DequantizeLinear); activations float");
  }
  for (const auto& [k, v] : options.metadata) meta(k, v);

  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw Error::internal(source + ": the ONNX graph fedtrack built fails onnx::checker: " + e.what());
  }
  if (!proto.SerializeToString(&out.bytes)) throw Error::internal(source + ": cannot serialize the ONNX model");
  return out;
}

}  // namespace fedtrack
