// Checkpoints: safetensors files and state-dict loading with a full key report.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace smp::io {

// Ordered name -> tensor map (sorted by name, as safetensors stores it).
using TensorMap = std::map<std::string, torch::Tensor>;

struct SafetensorsFile {
  TensorMap tensors;                            // CPU tensors in the file's dtypes
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry
};

// Reads a .safetensors file. Validates the header length, JSON, dtypes, shapes, offsets and byte
// lengths before touching tensor data; throws std::runtime_error naming the file and the problem.
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const void* data, size_t size, const std::string& what = "buffer");
// Writes tensors (any device, made contiguous on CPU) atomically: temporary file, then rename.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});
std::string serialize_safetensors(const TensorMap& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Reads a state dict saved by torch.save (zip format, .pth/.bin/.pt) without running any Python: only
// tensors, storages, OrderedDict and plain values are accepted, as with torch.load(weights_only=True).
// A checkpoint that nests its weights ({"state_dict": ...}, {"model": ...}) is read from entry `key`;
// "" picks the file itself when it is a flat dict of tensors, else "state_dict", else "model".
// Throws std::runtime_error naming the file and the problem.
TensorMap read_torch_state_dict(const std::string& path, const std::string& key = "");

// Module parameters and buffers under their registered names (Python's state_dict keys).
TensorMap state_dict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing;       // in the module, not in the file
  std::vector<std::string> unexpected;    // in the file, not in the module
  std::vector<std::string> mismatched;    // "name: file [..] vs model [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe() const;
};

struct LoadOptions {
  TORCH_ARG(bool, strict) = true;
  // Maps a file key to a module key; returning "" drops the key silently (pruned heads).
  TORCH_ARG(std::function<std::string(const std::string&)>, rename) = nullptr;
  // Module key of a first conv weight that may be adapted from 3 input channels (timm's
  // adapt_input_conv); empty = none.
  TORCH_ARG(std::string, first_conv_weight) = "";
};

// Copies tensors into the module (converting dtype/device). strict: any missing, unexpected or
// mismatched key throws with the full report and leaves the module unchanged.
LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors,
                           const LoadOptions& options = {});

// timm's adapt_input_conv: a conv weight [O, 3, kh, kw] made to [O, in_chans, kh, kw].
torch::Tensor adapt_input_conv(const torch::Tensor& weight, int64_t in_chans);

}  // namespace smp::io
