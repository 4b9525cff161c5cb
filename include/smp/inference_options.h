// How the library runs a model for inference (predict, smp predict, smp eval, validation).
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <string>

namespace smp {

struct InferenceOptions {
  // true: the compiled inference path (smp/inference.h); false: the plain eager forward.
  TORCH_ARG(bool, optimize) = true;
  // torch::kFloat32, or torch::kBFloat16: weights and activations in bfloat16 with float32
  // accumulation in convolutions and matrix products, float32 outputs (CPUs with AVX-512 BF16 or AMX;
  // on CUDA, autocast to bfloat16).
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
  // Input shapes kept compiled per model; the least recently used is dropped first.
  TORCH_ARG(int64_t, max_cached_shapes) = 4;
};

// "float32" (or "fp32") and "bfloat16" (or "bf16").
torch::Dtype parse_inference_dtype(const std::string& name);
// Whether this CPU runs bfloat16 convolutions natively (AVX-512 BF16 or AMX), as oneDNN reports it.
bool cpu_supports_bfloat16();

}  // namespace smp
