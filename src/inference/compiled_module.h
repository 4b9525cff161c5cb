// Programs of the inference compiler for a module's function, one per input shape.
#pragma once

#include "inference/engine.h"

#include <torch/nn/module.h>

#include <list>
#include <mutex>
#include <utility>

namespace smp::inference {

// Compiles `fn`, which reads `module`'s parameters and buffers, for each input shape it is run on,
// keeping `capacity` programs (least recently used dropped). Any change to a parameter or buffer
// (in place, or a new tensor) drops them all. Tracing runs with the module in eval mode and its
// parameters not requiring grad, both restored afterwards. CPU tensors only.
class CompiledModule {
 public:
  CompiledModule(torch::nn::Module& module, TracedFunction fn, at::ScalarType dtype, size_t capacity);
  std::vector<at::Tensor> run(const at::Tensor& x);
  std::shared_ptr<const Program> program_for(const at::Tensor& x);

 private:
  std::vector<std::pair<const void*, uint32_t>> fingerprint() const;

  torch::nn::Module& module_;
  TracedFunction fn_;
  at::ScalarType dtype_;
  size_t capacity_;
  std::mutex mutex_;
  std::vector<std::pair<const void*, uint32_t>> fingerprint_;
  std::list<std::shared_ptr<const Program>> programs_;  // most recently used first
};

}  // namespace smp::inference
