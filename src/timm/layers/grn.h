// ConvNeXt-V2's Global Response Normalization and timm's GlobalResponseNormMlp
// (fc1 -> act -> grn -> fc2).
#pragma once

#include <torch/torch.h>

#include "timm/layers/activations.h"
#include "timm/layers/mlp.h"

namespace smp::timm::layers {

// x + bias + weight * x * (per-channel spatial L2 norm / its mean over channels). Works on NHWC
// (channels_last) or NCHW tensors.
class GlobalResponseNormImpl : public torch::nn::Module {
 public:
  explicit GlobalResponseNormImpl(int64_t dim, double eps = 1e-6, bool channels_last = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  double eps_;
  bool channels_last_;
};
TORCH_MODULE(GlobalResponseNorm);

// Linear layers over NHWC input, or 1x1 convolutions over NCHW input with use_conv().
class GlobalResponseNormMlpImpl : public torch::nn::Module {
 public:
  explicit GlobalResponseNormMlpImpl(const MlpOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::AnyModule fc1_, fc2_;
  GlobalResponseNorm grn_{nullptr};
  ActFn act_;
};
TORCH_MODULE(GlobalResponseNormMlp);

}  // namespace smp::timm::layers
