#include "timm/layers/attention_modules.h"

#include <cmath>

#include "timm/layers/activations.h"
#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

SEModuleImpl::SEModuleImpl(int64_t channels, double rd_ratio, int64_t rd_divisor)
    : SEModuleImpl(channels, make_divisible(static_cast<double>(channels) * rd_ratio, rd_divisor, 0.0, 0.0), "relu") {}

SEModuleImpl::SEModuleImpl(int64_t channels, int64_t rd_channels, const std::string& act) : act_(get_act(act)) {
  fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, rd_channels, 1)));
  fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(rd_channels, channels, 1)));
}

torch::Tensor SEModuleImpl::forward(const torch::Tensor& x) {
  auto s = x.mean({2, 3}, /*keepdim=*/true);
  s = fc2_(act_(fc1_(s)));
  return x * torch::sigmoid(s);
}

EcaModuleImpl::EcaModuleImpl(int64_t channels) {
  const auto t = static_cast<int64_t>(std::abs(std::log2(static_cast<double>(channels)) + 1.0) / 2.0);
  const int64_t k = std::max<int64_t>(t % 2 ? t : t + 1, 3);
  conv_ = register_module("conv", nn::Conv1d(nn::Conv1dOptions(1, 1, k).padding((k - 1) / 2).bias(false)));
}

torch::Tensor EcaModuleImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0);
  auto y = conv_(x.mean({2, 3}).view({B, 1, -1}));
  return x * torch::sigmoid(y).view({B, -1, 1, 1});
}

EffectiveSEModuleImpl::EffectiveSEModuleImpl(int64_t channels) {
  fc_ = register_module("fc", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)));
}

torch::Tensor EffectiveSEModuleImpl::forward(const torch::Tensor& x) {
  return x * torch::hardsigmoid(fc_(x.mean({2, 3}, /*keepdim=*/true)));
}

nn::AnyModule create_attn(const std::string& name, int64_t channels, double se_rd_ratio) {
  if (name == "se") return nn::AnyModule(SEModule(channels, se_rd_ratio));
  if (name == "eca") return nn::AnyModule(EcaModule(channels));
  if (name == "ese") return nn::AnyModule(EffectiveSEModule(channels));
  throw std::invalid_argument("unsupported attention layer '" + name + "' (supported: se, eca, ese)");
}

}  // namespace smp::timm::layers
