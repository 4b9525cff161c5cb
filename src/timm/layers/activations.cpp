#include "timm/layers/activations.h"

namespace smp::timm::layers {

namespace F = torch::nn::functional;

ActFn get_act(const std::string& name) {
  if (name.empty() || name == "identity") return [](const torch::Tensor& x) { return x; };
  if (name == "relu") return [](const torch::Tensor& x) { return torch::relu(x); };
  if (name == "relu6") return [](const torch::Tensor& x) { return torch::clamp(x, 0, 6); };
  if (name == "gelu") return [](const torch::Tensor& x) { return torch::gelu(x); };
  if (name == "gelu_tanh") return [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); };
  if (name == "quick_gelu") return [](const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); };
  if (name == "silu" || name == "swish") return [](const torch::Tensor& x) { return torch::silu(x); };
  if (name == "hard_swish") return [](const torch::Tensor& x) { return torch::hardswish(x); };
  if (name == "hard_sigmoid") return [](const torch::Tensor& x) { return torch::hardsigmoid(x); };
  if (name == "sigmoid") return [](const torch::Tensor& x) { return torch::sigmoid(x); };
  if (name == "tanh") return [](const torch::Tensor& x) { return torch::tanh(x); };
  if (name == "mish") return [](const torch::Tensor& x) { return torch::mish(x); };
  if (name == "elu") return [](const torch::Tensor& x) { return torch::elu(x); };
  if (name == "leaky_relu") return [](const torch::Tensor& x) { return torch::leaky_relu(x, 0.01); };
  throw std::invalid_argument("unknown activation '" + name + "'");
}

}  // namespace smp::timm::layers
