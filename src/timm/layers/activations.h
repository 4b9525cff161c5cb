// Activation functions by timm's names. Parameter-free, so they are plain functions, not modules.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace smp::timm::layers {

using ActFn = std::function<torch::Tensor(const torch::Tensor&)>;

// "relu", "relu6", "gelu", "gelu_tanh", "silu"/"swish", "hard_swish", "hard_sigmoid", "sigmoid",
// "tanh", "mish", "elu", "leaky_relu", "identity"/"" . Throws on an unknown name.
ActFn get_act(const std::string& name);

}  // namespace smp::timm::layers
