// smp-fill-v1: the deterministic parameter and input fill of the reference fixtures.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace smp::fill {

// u in [0, 1) for element `index` (row-major, 0-based) of the tensor called `name`.
double uniform(const std::string& name, uint64_t index);

// The input rule: every element is s = 2u - 1.
torch::Tensor input(const std::string& name, at::IntArrayRef shape, torch::Dtype dtype = torch::kFloat32);

// The parameter/buffer rule (depends on the name's suffix and the shape), see fixtures/README.md.
torch::Tensor parameter(const std::string& name, at::IntArrayRef shape, torch::Dtype dtype);

// Fills every parameter and buffer of `module` in place. `fill_name` maps a state-dict key to the
// name the fill is computed from (identity when null).
void fill_module(torch::nn::Module& module, const std::function<std::string(const std::string&)>& fill_name = nullptr);

}  // namespace smp::fill
