// Parameters — the unit a federation exchanges: a model's ordered
// named_parameters() followed by its named_buffers() (leaving buffers out
// silently breaks BatchNorm), as contiguous CPU tensors.
//
// Also: the versioned, length-checked wire encoding, and LibTorch checkpoints
// that a user can torch::load into the same model. A Parameters value owns
// its tensors; copying it shares storage (tensors are handles) — use clone()
// for an independent copy. Not synchronized: share read-only.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fedtrack/core/model_card.h"

namespace torch::nn {
class Module;
}

namespace fedtrack {

struct Parameters {
  std::vector<std::string> names;      // dotted names, e.g. "fc1.weight"
  std::vector<torch::Tensor> tensors;  // same length as names
  std::size_t buffer_begin = 0;        // entries at and after this index are buffers

  std::size_t size() const { return tensors.size(); }
  bool empty() const { return tensors.empty(); }
  bool is_buffer(std::size_t i) const { return i >= buffer_begin; }
  // Total number of scalar elements.
  std::int64_t numel() const;
};

// Detached, contiguous copies of the module's parameters and buffers.
Parameters parameters_from_module(const torch::nn::Module& module);

// Writes `params` into the module under NoGradGuard. Error(kInvalidArgument)
// if names, shapes or dtypes differ; the module is unchanged then.
void load_parameters(torch::nn::Module& module, const Parameters& params);

// Deep copy.
Parameters clone(const Parameters& params);

// Checks that `other` has exactly the layout of `reference` (names, order,
// shapes, dtypes); Error(kInvalidArgument) naming `who` and the tensor.
void check_layout(const Parameters& reference, const Parameters& other, const std::string& who);

// Checks that `update` has exactly the layout of `reference` (names, order,
// shapes, dtypes) and only finite values. Error(kInvalidArgument) naming
// `who` and the offending tensor otherwise.
void check_update(const Parameters& reference, const Parameters& update, const std::string& who);

// --- Wire encoding ---------------------------------------------------------
// Little-endian: "FTPM", u16 version (1), u16 flags (0), u64 payload length,
// u32 tensor count, u32 buffer_begin; then per tensor: u16 name length, name,
// u8 dtype, u8 ndim, i64 dims[ndim], u64 data length, data. Decoding checks
// every length against what remains and rejects trailing bytes
// (Error(kCorruption)); an unknown version is Error(kInvalidArgument).
std::string encode_parameters(const Parameters& params);
Parameters decode_parameters(std::string_view bytes);
// Exactly encode_parameters(params).size(), without encoding.
std::uint64_t encoded_size(const Parameters& params);

// --- Checkpoints -----------------------------------------------------------
// A LibTorch archive holding the tensors the way Module::save writes them, so
// `torch::load(model, path)` restores them into the same model. The archive's
// root folder is always "archive" and there are no timestamps: the bytes
// depend only on the names, tensors and card.
// With a card, the archive also holds it as attributes named fedtrack_*
// (fedtrack_model, fedtrack_input_shape, fedtrack_scaling_mean, ...), which
// torch::load ignores and torch.jit.load shows as attributes.
std::string checkpoint_bytes(const Parameters& params, const ModelCard* card = nullptr);

// Writes checkpoint_bytes(params) to `path` via a temporary file in the same
// folder, flushed and renamed: a crash leaves the old file or the new one.
void write_checkpoint(const std::string& path, const Parameters& params, const ModelCard* card = nullptr);

// The card of a checkpoint; nullopt for one written without (before fedtrack
// recorded cards, or by torch::save). Error(kCorruption) for unreadable
// bytes or a card whose entries have the wrong types.
std::optional<ModelCard> parse_model_card(const std::string& bytes, const std::string& name);

// Reads a checkpoint written by write_checkpoint or torch::save(module, ...)
// for a model whose layout is `layout` (names, shapes, dtypes).
// Error(kNotFound) for a missing file, kCorruption for unreadable bytes,
// kInvalidArgument for a layout that does not match.
Parameters read_checkpoint(const std::string& path, const Parameters& layout);
Parameters parse_checkpoint(const std::string& bytes, const Parameters& layout,
                            const std::string& name);

}  // namespace fedtrack
