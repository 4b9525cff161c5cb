// timm's channel-attention modules as create_attn builds them: 'se' (SEModule), 'eca' (EcaModule) and
// 'ese' (EffectiveSEModule).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace smp::timm::layers {

// Squeeze-and-excitation: global average -> 1x1 conv (fc1) -> ReLU -> 1x1 conv (fc2) -> sigmoid gate.
class SEModuleImpl : public torch::nn::Module {
 public:
  // The reduced width is timm's make_divisible(channels * rd_ratio, rd_divisor, round_limit=0).
  explicit SEModuleImpl(int64_t channels, double rd_ratio = 1.0 / 16, int64_t rd_divisor = 8);
  // An explicit reduced width and activation (timm's rd_channels / act_layer), as RegNet uses.
  SEModuleImpl(int64_t channels, int64_t rd_channels, const std::string& act);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
  std::function<torch::Tensor(const torch::Tensor&)> act_;
};
TORCH_MODULE(SEModule);

// Efficient channel attention: a 1-D convolution (`conv`) across the pooled channel vector, kernel
// size chosen from the channel count (gamma 2, beta 1), then a sigmoid gate.
class EcaModuleImpl : public torch::nn::Module {
 public:
  explicit EcaModuleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv1d conv_{nullptr};
};
TORCH_MODULE(EcaModule);

// timm's EffectiveSEModule ('ese'): one 1x1 conv (`fc`) on the pooled vector, hard-sigmoid gate.
class EffectiveSEModuleImpl : public torch::nn::Module {
 public:
  explicit EffectiveSEModuleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d fc_{nullptr};
};
TORCH_MODULE(EffectiveSEModule);

// create_attn(name, channels) for "se" and "eca"; throws on other names.
torch::nn::AnyModule create_attn(const std::string& name, int64_t channels, double se_rd_ratio = 1.0 / 16);

}  // namespace smp::timm::layers
