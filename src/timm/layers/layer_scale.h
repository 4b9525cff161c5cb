// timm's LayerScale (per-channel scale of a channels-last tensor) and LayerScale2d (of an NCHW tensor).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class LayerScaleImpl : public torch::nn::Module {
 public:
  explicit LayerScaleImpl(int64_t dim, double init_value = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

class LayerScale2dImpl : public torch::nn::Module {
 public:
  explicit LayerScale2dImpl(int64_t dim, double init_value = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale2d);

}  // namespace smp::timm::layers
