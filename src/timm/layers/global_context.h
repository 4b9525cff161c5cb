// timm's GlobalContext attention (GCNet) as EfficientNet blocks use it: attention pooling over the
// positions ("conv_attn"), a ConvMlp with LayerNorm2d ("mlp_scale": fc1, norm, fc2) and a sigmoid gate
// that rescales the input.
#pragma once

#include <torch/torch.h>

#include <string>

#include "timm/layers/activations.h"
#include "timm/layers/mlp.h"

namespace smp::timm::layers {

class GlobalContextImpl : public torch::nn::Module {
 public:
  // Hidden width: make_divisible(channels * rd_ratio, 1, round_limit=0); `act` inside the MLP.
  GlobalContextImpl(int64_t channels, double rd_ratio = 1.0 / 8, const std::string& act = "relu");
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_attn_{nullptr};
  std::shared_ptr<torch::nn::Module> mlp_scale_;
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
  LayerNorm2d norm_{nullptr};
  ActFn act_;
};
TORCH_MODULE(GlobalContext);

}  // namespace smp::timm::layers
