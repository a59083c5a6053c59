#include "fedtrack/core/parameters.h"

#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "byte_codec.h"
#include "parameter_stream.h"
#include "fedtrack/core/text.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {
namespace {

constexpr char kMagic[4] = {'F', 'T', 'P', 'M'};
constexpr std::uint16_t kVersion = 1;
constexpr std::size_t kHeaderSize = 4 + 2 + 2 + 8 + 4 + 4;
constexpr std::uint8_t kMaxRank = 8;  // LibTorch models use at most 5 (conv3d weights); anything past 8 is malformed

// dtype codes on the wire; never renumber.
std::uint8_t dtype_code(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return 1;
    case c10::kDouble: return 2;
    case c10::kLong: return 3;
    case c10::kInt: return 4;
    case c10::kByte: return 5;
    case c10::kChar: return 6;
    case c10::kShort: return 7;
    case c10::kBool: return 8;
    case c10::kHalf: return 9;
    case c10::kBFloat16: return 10;
    default:
      throw Error::invalid_argument(std::string("parameters: dtype ") + c10::toString(t) +
                                    " cannot be encoded");
  }
}

c10::ScalarType dtype_from_code(std::uint8_t code) {
  switch (code) {
    case 1: return c10::kFloat;
    case 2: return c10::kDouble;
    case 3: return c10::kLong;
    case 4: return c10::kInt;
    case 5: return c10::kByte;
    case 6: return c10::kChar;
    case 7: return c10::kShort;
    case 8: return c10::kBool;
    case 9: return c10::kHalf;
    case 10: return c10::kBFloat16;
    default: throw Error::corruption("parameters: unknown dtype code " + std::to_string(code));
  }
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// A tensor's fields after its name: dtype, rank, dimensions, data length.
struct TensorHeader {
  c10::ScalarType dtype = c10::kFloat;
  std::vector<std::int64_t> dims;
  std::uint64_t nbytes = 0;
};

// Reads tensor `i`'s header from `r` (an in-memory or a streaming reader:
// get<T>(what), remaining()). Every dimension and the byte count are bounded
// by the bytes present, with overflow-checked products: a shape whose
// product wraps past 2^64 never reaches torch::empty. Error(kCorruption).
template <typename Reader>
TensorHeader read_tensor_header(Reader& r, std::uint32_t i) {
  TensorHeader h;
  h.dtype = dtype_from_code(r.template get<std::uint8_t>("dtype"));
  const auto ndim = r.template get<std::uint8_t>("rank");
  if (ndim > kMaxRank) {
    throw Error::corruption("parameters: tensor " + std::to_string(i) + " has rank " + std::to_string(ndim) +
                            ", over the limit of " + std::to_string(kMaxRank));
  }
  h.dims.resize(ndim);
  std::uint64_t expected = c10::elementSize(h.dtype);
  bool overflow = false;
  for (auto& d : h.dims) {
    d = r.template get<std::int64_t>("dimension");
    if (d < 0) throw Error::corruption("parameters: negative dimension in tensor " + std::to_string(i));
    overflow = overflow || __builtin_mul_overflow(expected, static_cast<std::uint64_t>(d), &expected);
  }
  h.nbytes = r.template get<std::uint64_t>("data length");
  if (overflow || h.nbytes != expected || expected > r.remaining()) {
    throw Error::corruption("parameters: tensor " + std::to_string(i) + " carries " + std::to_string(h.nbytes) +
                            " bytes, its shape needs " +
                            (overflow ? std::string("more than 2^64") : std::to_string(expected)) + " (" +
                            std::to_string(r.remaining()) + " bytes left in the message)");
  }
  return h;
}

}  // namespace

std::int64_t Parameters::numel() const {
  std::int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

Parameters parameters_from_module(const torch::nn::Module& module) {
  Parameters out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    out.names.push_back(item.key());
    out.tensors.push_back(item.value().detach().clone().contiguous());
  }
  out.buffer_begin = out.tensors.size();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    out.names.push_back(item.key());
    out.tensors.push_back(item.value().detach().clone().contiguous());
  }
  return out;
}

void load_parameters(torch::nn::Module& module, const Parameters& params) {
  std::vector<torch::Tensor> targets;
  Parameters layout;
  for (const auto& item : module.named_parameters(true)) {
    layout.names.push_back(item.key());
    layout.tensors.push_back(item.value());
  }
  layout.buffer_begin = layout.tensors.size();
  for (const auto& item : module.named_buffers(true)) {
    layout.names.push_back(item.key());
    layout.tensors.push_back(item.value());
  }
  check_layout(layout, params, "model");
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params.size(); ++i) layout.tensors[i].copy_(params.tensors[i]);
}

Parameters clone(const Parameters& params) {
  Parameters out;
  out.names = params.names;
  out.buffer_begin = params.buffer_begin;
  out.tensors.reserve(params.size());
  for (const auto& t : params.tensors) out.tensors.push_back(t.clone());
  return out;
}

void check_layout(const Parameters& reference, const Parameters& other, const std::string& who) {
  if (reference.size() != other.size() || reference.buffer_begin != other.buffer_begin) {
    throw Error::invalid_argument(who + ": has " + std::to_string(other.size()) + " tensors (" +
                                  std::to_string(other.buffer_begin) + " parameters), expected " +
                                  std::to_string(reference.size()) + " (" +
                                  std::to_string(reference.buffer_begin) + " parameters)");
  }
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const auto& name = reference.names[i];
    if (other.names[i] != name) {
      throw Error::invalid_argument(who + ": tensor " + std::to_string(i) + " is '" +
                                    other.names[i] + "', expected '" + name + "'");
    }
    const auto& a = reference.tensors[i];
    const auto& b = other.tensors[i];
    if (!b.defined() || a.sizes() != b.sizes()) {
      throw Error::invalid_argument(who + ": '" + name + "' has shape " +
                                    (b.defined() ? shape_text(b) : std::string("(undefined)")) +
                                    ", expected " + shape_text(a));
    }
    if (a.scalar_type() != b.scalar_type()) {
      throw Error::invalid_argument(who + ": '" + name + "' has dtype " +
                                    c10::toString(b.scalar_type()) + ", expected " +
                                    c10::toString(a.scalar_type()));
    }
  }
}

namespace {

// Whether every value of a floating-point tensor is finite. float32 and
// float64 are scanned in place: torch::isfinite would allocate an |x| copy
// and two masks per tensor, for every update a server receives.
template <typename T>
bool all_finite_values(const torch::Tensor& t) {
  const T* v = t.data_ptr<T>();
  const std::int64_t n = t.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

bool all_finite(const torch::Tensor& t) {
  if (t.is_contiguous() && t.device().is_cpu()) {
    if (t.scalar_type() == torch::kFloat) return all_finite_values<float>(t);
    if (t.scalar_type() == torch::kDouble) return all_finite_values<double>(t);
  }
  return torch::isfinite(t).all().item<bool>();
}

}  // namespace

void check_update(const Parameters& reference, const Parameters& update, const std::string& who) {
  check_layout(reference, update, who);
  for (std::size_t i = 0; i < update.size(); ++i) {
    const auto& t = update.tensors[i];
    if (t.is_floating_point() && !all_finite(t)) {
      throw Error::invalid_argument(who + ": '" + update.names[i] + "' contains NaN or Inf");
    }
  }
}

std::uint64_t encoded_size(const Parameters& params) {
  std::uint64_t n = kHeaderSize;
  for (std::size_t i = 0; i < params.size(); ++i) {
    n += 2 + params.names[i].size() + 1 + 1 + 8 * params.tensors[i].dim() + 8 +
         params.tensors[i].numel() * params.tensors[i].element_size();
  }
  return n;
}

std::string encode_parameters(const Parameters& params) {
  if (params.names.size() != params.tensors.size() || params.buffer_begin > params.size()) {
    throw Error::invalid_argument("parameters: names, tensors and buffer_begin disagree");
  }
  ByteWriter w;
  std::string& out = w.str();
  const std::uint64_t total = encoded_size(params);
  out.reserve(total);
  out.append(kMagic, 4);
  w.put<std::uint16_t>(kVersion);
  w.put<std::uint16_t>(0);
  w.put<std::uint64_t>(total - kHeaderSize + 8);  // everything after this field
  w.put<std::uint32_t>(static_cast<std::uint32_t>(params.size()));
  w.put<std::uint32_t>(static_cast<std::uint32_t>(params.buffer_begin));
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& name = params.names[i];
    if (name.size() > 0xFFFF) throw Error::invalid_argument("parameters: name too long: " + name);
    const torch::Tensor t = params.tensors[i].contiguous().cpu();
    if (t.dim() > kMaxRank) throw Error::invalid_argument("parameters: '" + name + "' has rank over 8");
    w.put<std::uint16_t>(static_cast<std::uint16_t>(name.size()));
    out += name;
    w.put<std::uint8_t>(dtype_code(t.scalar_type()));
    w.put<std::uint8_t>(static_cast<std::uint8_t>(t.dim()));
    for (auto d : t.sizes()) w.put<std::int64_t>(d);
    const std::uint64_t nbytes = t.numel() * t.element_size();
    w.put<std::uint64_t>(nbytes);
    out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  }
  return w.take();
}

Parameters decode_parameters(std::string_view bytes) {
  ByteReader r(bytes, "parameters");
  auto magic = r.take(4, "magic");
  if (std::memcmp(magic.data(), kMagic, 4) != 0) {
    throw Error::corruption("parameters: bad magic, not a fedtrack parameter encoding");
  }
  const auto version = r.get<std::uint16_t>("version");
  if (version != kVersion) {
    throw Error::invalid_argument("parameters: encoding version " + std::to_string(version) +
                                  " is not supported (this build reads version " +
                                  std::to_string(kVersion) + ")");
  }
  r.get<std::uint16_t>("flags");
  const auto length = r.get<std::uint64_t>("length");
  if (length != r.remaining()) {
    throw Error::corruption("parameters: header says " + std::to_string(length) +
                            " bytes follow, found " + std::to_string(r.remaining()));
  }
  const auto count = r.get<std::uint32_t>("tensor count");
  const auto buffer_begin = r.get<std::uint32_t>("buffer index");
  if (buffer_begin > count) throw Error::corruption("parameters: buffer index past the tensor count");
  if (count > r.remaining() / 12) {  // each tensor takes at least 12 bytes (name length, dtype, rank, data length)
    throw Error::corruption("parameters: " + std::to_string(count) + " tensors cannot fit in " +
                            std::to_string(r.remaining()) + " bytes");
  }
  Parameters out;
  out.buffer_begin = buffer_begin;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto name_len = r.get<std::uint16_t>("name length");
    out.names.emplace_back(r.take(name_len, "name"));
    const auto [dtype, dims, nbytes] = read_tensor_header(r, i);
    auto data = r.take(nbytes, "tensor data");
    torch::Tensor t = torch::empty(dims, torch::TensorOptions().dtype(dtype));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data.data(), nbytes);
    out.tensors.push_back(std::move(t));
  }
  if (r.remaining() != 0) {
    throw Error::corruption("parameters: " + std::to_string(r.remaining()) + " trailing bytes");
  }
  return out;
}

// --- Checkpoints -------------------------------------------------------------

namespace {

// A module tree rebuilt from dotted names, so the archive nests exactly like
// Module::save: own parameters, own buffers, then children in first-seen order.
struct ArchiveNode {
  std::vector<std::pair<std::string, std::size_t>> parameters;  // leaf name -> index
  std::vector<std::pair<std::string, std::size_t>> buffers;
  std::vector<std::string> child_order;
  std::map<std::string, ArchiveNode> children;
};

ArchiveNode build_tree(const Parameters& params) {
  ArchiveNode root;
  for (std::size_t i = 0; i < params.size(); ++i) {
    ArchiveNode* node = &root;
    std::string rest = params.names[i];
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      const std::string child = rest.substr(0, dot);
      if (!node->children.count(child)) node->child_order.push_back(child);
      node = &node->children[child];
      rest = rest.substr(dot + 1);
    }
    (params.is_buffer(i) ? node->buffers : node->parameters).emplace_back(rest, i);
  }
  return root;
}

void write_node(const ArchiveNode& node, const Parameters& params,
                torch::serialize::OutputArchive& archive) {
  for (const auto& [key, i] : node.parameters) archive.write(key, params.tensors[i], false);
  for (const auto& [key, i] : node.buffers) archive.write(key, params.tensors[i], true);
  for (const auto& name : node.child_order) {
    torch::serialize::OutputArchive child(archive.compilation_unit());
    write_node(node.children.at(name), params, child);
    archive.write(name, child);
  }
}

// InputArchive is move-only, so descend by recursion.
bool read_nested(torch::serialize::InputArchive& node, const std::vector<std::string>& path,
                 std::size_t depth, const std::string& leaf, bool is_buffer, torch::Tensor& out) {
  if (depth == path.size()) return node.try_read(leaf, out, is_buffer);
  torch::serialize::InputArchive child;
  if (!node.try_read(path[depth], child)) return false;
  return read_nested(child, path, depth + 1, leaf, is_buffer, out);
}

// The card's attributes. Lists are typed (List[int], List[float], List[str])
// so Python's torch.jit.load shows them as plain values.
constexpr const char* kCardVersion = "fedtrack_card_version";

void write_card(const ModelCard& card, torch::serialize::OutputArchive& archive) {
  archive.write(kCardVersion, c10::IValue(ModelCard::kVersion));
  archive.write("fedtrack_model", c10::IValue(card.model));
  archive.write("fedtrack_input_shape", c10::IValue(c10::List<std::int64_t>(card.input_shape)));
  archive.write("fedtrack_num_classes", c10::IValue(card.num_classes));
  archive.write("fedtrack_data_format", c10::IValue(card.data_format));
  archive.write("fedtrack_dataset", c10::IValue(card.dataset));
  archive.write("fedtrack_scaling_mean", c10::IValue(c10::List<double>(card.scaling_mean)));
  archive.write("fedtrack_scaling_stddev", c10::IValue(c10::List<double>(card.scaling_stddev)));
  archive.write("fedtrack_feature_names", c10::IValue(c10::List<std::string>(card.feature_names)));
  archive.write("fedtrack_class_names", c10::IValue(c10::List<std::string>(card.class_names)));
}

std::optional<ModelCard> read_card(torch::serialize::InputArchive& archive, const std::string& name) {
  c10::IValue v;
  if (!archive.try_read(kCardVersion, v)) return std::nullopt;
  const auto bad = [&](const std::string& key, const std::string& why) {
    return Error::corruption(name + ": model card entry " + key + " " + why);
  };
  if (!v.isInt()) throw bad(kCardVersion, "is not an integer");
  if (v.toInt() != ModelCard::kVersion) {
    throw bad(kCardVersion, "is " + std::to_string(v.toInt()) + "; this fedtrack reads version " +
                                std::to_string(ModelCard::kVersion));
  }
  const auto get = [&](const std::string& key) {
    c10::IValue out;
    if (!archive.try_read(key, out)) throw bad(key, "is missing");
    return out;
  };
  const auto text = [&](const std::string& key) {
    c10::IValue x = get(key);
    if (!x.isString()) throw bad(key, "is not a string");
    return x.toStringRef();
  };
  const auto integer = [&](const std::string& key) {
    c10::IValue x = get(key);
    if (!x.isInt()) throw bad(key, "is not an integer");
    return x.toInt();
  };
  const auto ints = [&](const std::string& key) {
    c10::IValue x = get(key);
    if (!x.isIntList()) throw bad(key, "is not a list of integers");
    return x.toIntVector();
  };
  const auto doubles = [&](const std::string& key) {
    c10::IValue x = get(key);
    if (!x.isDoubleList()) throw bad(key, "is not a list of numbers");
    return x.toDoubleVector();
  };
  const auto strings = [&](const std::string& key) {
    c10::IValue x = get(key);
    if (!x.isList()) throw bad(key, "is not a list of strings");
    std::vector<std::string> out;
    for (const c10::IValue& e : x.toListRef()) {
      if (!e.isString()) throw bad(key, "is not a list of strings");
      out.push_back(e.toStringRef());
    }
    return out;
  };
  ModelCard card;
  card.model = text("fedtrack_model");
  card.input_shape = ints("fedtrack_input_shape");
  card.num_classes = integer("fedtrack_num_classes");
  card.data_format = text("fedtrack_data_format");
  card.dataset = text("fedtrack_dataset");
  card.scaling_mean = doubles("fedtrack_scaling_mean");
  card.scaling_stddev = doubles("fedtrack_scaling_stddev");
  card.feature_names = strings("fedtrack_feature_names");
  card.class_names = strings("fedtrack_class_names");
  return card;
}

}  // namespace

std::string checkpoint_bytes(const Parameters& params, const ModelCard* card) {
  torch::serialize::OutputArchive archive;
  write_node(build_tree(params), params, archive);
  if (card) write_card(*card, archive);
  // Saving through a writer function (not a file name) makes LibTorch name the
  // archive's root folder "archive", whatever the destination file is called.
  std::string out;
  archive.save_to([&out](const void* data, std::size_t n) -> std::size_t {
    out.append(static_cast<const char*>(data), n);
    return n;
  });
  return out;
}

void write_checkpoint(const std::string& path, const Parameters& params, const ModelCard* card) {
  write_file_atomically(path, checkpoint_bytes(params, card));
}

std::optional<ModelCard> parse_model_card(const std::string& bytes, const std::string& name) {
  torch::serialize::InputArchive root;
  try {
    root.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    throw Error::corruption(name + ": not a readable LibTorch checkpoint: " + e.what_without_backtrace());
  }
  return read_card(root, name);
}

Parameters parse_checkpoint(const std::string& bytes, const Parameters& layout,
                            const std::string& name) {
  torch::serialize::InputArchive root;
  try {
    root.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    throw Error::corruption(name + ": not a readable LibTorch checkpoint: " + e.what_without_backtrace());
  }
  Parameters out;
  out.names = layout.names;
  out.buffer_begin = layout.buffer_begin;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const std::string& full = layout.names[i];
    std::vector<std::string> path;
    std::string rest = full;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      path.push_back(rest.substr(0, dot));
      rest = rest.substr(dot + 1);
    }
    torch::Tensor t;
    if (!read_nested(root, path, 0, rest, layout.is_buffer(i), t)) {
      throw Error::invalid_argument(name + ": checkpoint has no tensor '" + full + "'");
    }
    out.tensors.push_back(t.contiguous());
  }
  check_layout(layout, out, name);
  return out;
}

Parameters read_checkpoint(const std::string& path, const Parameters& layout) {
  return parse_checkpoint(read_file(path), layout, path);
}

}  // namespace fedtrack

// --- Streaming decode (parameter_stream.h) ----------------------------------

namespace fedtrack {
namespace {

// Exactly `n` bytes from `source`, or Error(kCorruption) naming `what`.
class StreamReader {
 public:
  StreamReader(const ByteSource& source, std::uint64_t size) : source_(source), left_(size) {}
  void read(char* out, std::uint64_t n, const char* what) {
    if (n > left_) {
      throw Error::corruption(std::string("parameters: ") + what + " runs past the end of the encoding (" +
                              std::to_string(left_) + " bytes left)");
    }
    while (n > 0) {
      const std::size_t got = source_(out, static_cast<std::size_t>(n));
      if (got == 0) throw Error::corruption(std::string("parameters: the input ended inside the ") + what);
      out += got;
      n -= got;
      left_ -= got;
      read_ += got;
    }
  }
  template <typename T>
  T get(const char* what) {
    T value;
    char buf[sizeof(T)];
    read(buf, sizeof(T), what);
    std::memcpy(&value, buf, sizeof(T));
    return value;
  }
  std::uint64_t left() const { return left_; }
  std::uint64_t remaining() const { return left_; }  // the name read_tensor_header uses
  std::uint64_t bytes_read() const { return read_; }

 private:
  const ByteSource& source_;
  std::uint64_t left_;
  std::uint64_t read_ = 0;
};

// Whether every IEEE value in the span is finite: an exponent of all ones
// is NaN or Inf. Integer bit tests without an early exit, so the compiler
// vectorizes it (it runs on every byte a client uploads).
template <typename Bits>
bool finite_span(const char* bytes, std::size_t n, Bits exponent) {
  Bits bad = 0;
  const std::size_t count = n / sizeof(Bits);
  for (std::size_t i = 0; i < count; ++i) {
    Bits v;
    std::memcpy(&v, bytes + i * sizeof(Bits), sizeof(Bits));
    bad |= static_cast<Bits>((v & exponent) == exponent);
  }
  return bad == 0;
}

}  // namespace

StreamedUpdate read_update(const ByteSource& source, std::uint64_t size, const Parameters& layout,
                           const std::string& who, Parameters* into) {
  StreamedUpdate out;
  StreamReader r(source, size);
  char magic[4];
  r.read(magic, 4, "magic");
  if (std::memcmp(magic, kMagic, 4) != 0) throw Error::corruption("parameters: bad magic, not a fedtrack parameter encoding");
  const auto version = r.get<std::uint16_t>("version");
  if (version != kVersion) {
    throw Error::invalid_argument("parameters: encoding version " + std::to_string(version) +
                                  " is not supported (this build reads version " + std::to_string(kVersion) + ")");
  }
  r.get<std::uint16_t>("flags");
  const auto length = r.get<std::uint64_t>("length");
  if (length != r.left()) {
    throw Error::corruption("parameters: header says " + std::to_string(length) + " bytes follow, the message holds " +
                            std::to_string(r.left()));
  }
  const auto count = r.get<std::uint32_t>("tensor count");
  const auto buffer_begin = r.get<std::uint32_t>("buffer index");
  auto reject = [&](std::string why) {
    out.rejection = who + ": " + why;
    out.bytes_read = r.bytes_read();
    return out;
  };
  if (buffer_begin > count) throw Error::corruption("parameters: buffer index past the tensor count");
  if (count > r.left() / 12) {
    throw Error::corruption("parameters: " + std::to_string(count) + " tensors cannot fit in " +
                            std::to_string(r.left()) + " bytes");
  }
  if (count != layout.size() || buffer_begin != layout.buffer_begin) {
    return reject(std::to_string(count) + " tensors (" + std::to_string(buffer_begin) + " parameters), the model has " +
                  std::to_string(layout.size()) + " (" + std::to_string(layout.buffer_begin) + ")");
  }
  out.parameters.buffer_begin = buffer_begin;
  std::string name;
  for (std::uint32_t i = 0; i < count; ++i) {
    const torch::Tensor& expected = layout.tensors[i];
    // The tensor's header, checked for consistency as decode_parameters does
    // (Error(kCorruption)), then against the model (a rejection).
    name.resize(r.get<std::uint16_t>("name length"));
    r.read(name.data(), name.size(), "name");
    const auto [dtype, dims, nbytes] = read_tensor_header(r, i);
    if (name != layout.names[i]) {
      return reject("tensor " + std::to_string(i) + " is '" +
                    truncate_utf8(to_valid_utf8(std::string_view(name).substr(0, 104)), 100) + "', expected '" +
                    layout.names[i] + "'");
    }
    if (c10::IntArrayRef(dims) != expected.sizes()) {
      std::ostringstream got;
      got << c10::IntArrayRef(dims);
      return reject("'" + name + "' has shape " + got.str() + ", expected " + shape_text(expected));
    }
    if (dtype != expected.scalar_type()) {
      return reject("'" + name + "' has dtype " + c10::toString(dtype) + ", expected " +
                    c10::toString(expected.scalar_type()));
    }
    const bool in_place = into && into->tensors[i].is_contiguous() && into->tensors[i].device().is_cpu();
    torch::Tensor t = in_place ? into->tensors[i] : torch::empty(expected.sizes(), torch::TensorOptions().dtype(dtype));
    char* data = static_cast<char*>(t.data_ptr());
    // In pieces, each checked as it lands (while it is still in cache).
    constexpr std::uint64_t kPiece = 1u << 20;
    for (std::uint64_t at = 0; at < nbytes; at += kPiece) {
      const std::uint64_t n = std::min(kPiece, nbytes - at);
      r.read(data + at, n, "tensor data");
      const bool ok = dtype == torch::kFloat    ? finite_span<std::uint32_t>(data + at, n, 0x7f800000u)
                      : dtype == torch::kDouble ? finite_span<std::uint64_t>(data + at, n, 0x7ff0000000000000ull)
                                                : true;
      if (!ok) return reject("'" + name + "' contains NaN or Inf");
    }
    if (t.is_floating_point() && dtype != torch::kFloat && dtype != torch::kDouble && !all_finite(t)) {
      return reject("'" + name + "' contains NaN or Inf");
    }
    out.parameters.names.push_back(name);
    out.parameters.tensors.push_back(std::move(t));
  }
  if (r.left() != 0) throw Error::corruption("parameters: " + std::to_string(r.left()) + " trailing bytes");
  out.bytes_read = r.bytes_read();
  return out;
}

}  // namespace fedtrack
