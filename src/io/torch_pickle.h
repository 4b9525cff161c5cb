// The restricted unpickler behind read_torch_state_dict (internal; the fuzz target calls it directly).
#pragma once

#include <smp/io.h>

#include <functional>
#include <string>

namespace smp::io::detail {

// Returns storage `key` of the archive as a 1-d CPU tensor of `numel` elements of `dtype`; throws
// std::runtime_error when the archive does not hold it.
using StorageLoader = std::function<torch::Tensor(const std::string& key, torch::Dtype dtype, int64_t numel)>;

// Reads the data.pkl of a torch.save archive and returns its state dict: the top-level dict when all
// its values are tensors, else its entry `key` ("" = "state_dict", then "model"). Only the opcodes and
// globals a state dict uses are accepted; nothing is ever called. Errors are std::runtime_error
// starting with `what`.
TensorMap unpickle_state_dict(const void* data, size_t size, const StorageLoader& load_storage,
                              const std::string& key, const std::string& what);

}  // namespace smp::io::detail
