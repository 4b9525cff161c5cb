// The inference compiler: a function of one tensor is traced once for an input shape into a LibTorch
// graph, its convolutions take in the BatchNorm, activation and residual add that follow them
// (one oneDNN primitive each, weights packed once), nearest upsampling merges into the concatenation
// that consumes it, activations stay channels-last, and the rest runs as the traced ATen ops. The
// result is a Program: a list of steps over value slots, each slot released after its last use.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace smp::inference {

using TracedFunction = std::function<std::vector<at::Tensor>(const at::Tensor&)>;

struct CompileStats {
  int convolutions = 0;          // as oneDNN primitives
  int matmuls = 0;               // products with constant weights (linear layers) as oneDNN primitives
  int folded_norms = 0;          // BatchNorms folded into a convolution's weights
  int fused_activations = 0;     // activations and constant scales run as a post-op
  int fused_adds = 0;            // residual adds run as a convolution's post-op
  int fused_upsamplings = 0;     // resizings done by the concatenation or convolution reading them
  int channel_concats = 0;       // concatenations by the channels-last kernel
  int convolutions_in_parts = 0;  // convolutions reading a concatenation/upsampling part by part
  int affine_norms = 0;          // BatchNorms without a convolution to fold into (channels-last kernel)
  int last_dim_ops = 0;          // LayerNorms and softmaxes over the last dimension (oneDNN)
  int pools = 0;                 // max poolings (oneDNN)
  int aten_ops = 0;              // steps run as the traced ATen op
  std::string summary() const;
};

class Program {
 public:
  struct Step;
  ~Program();
  // x must have the shape the program was compiled for; outputs are contiguous float32.
  std::vector<at::Tensor> run(const at::Tensor& x) const;
  const CompileStats& stats() const { return stats_; }
  const std::vector<int64_t>& input_sizes() const { return input_sizes_; }

 private:
  friend class Compiler;
  Program() = default;
  std::vector<c10::IValue> initial_;  // constants in their slots, empty elsewhere
  std::unordered_set<int> constant_slots_;
  std::vector<Step> steps_;
  int input_slot_ = -1;
  std::vector<int> output_slots_;
  std::vector<int64_t> input_sizes_;
  at::ScalarType dtype_ = at::kFloat;
  CompileStats stats_;
};

// Traces `fn` on `example` (fn must only read tensors that do not require grad) and compiles it for
// example's shape. dtype: kFloat or kBFloat16 (activations and weights in bfloat16, float32
// accumulation in the convolutions, float32 outputs).
std::shared_ptr<const Program> compile(const TracedFunction& fn, const at::Tensor& example, at::ScalarType dtype);

}  // namespace smp::inference
