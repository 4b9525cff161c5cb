// timm's EvoNorm2dS0: a normalisation-activation layer, x * sigmoid(v * x) / group_std(x), then an
// affine transform ("weight", "bias"; "v" only when the activation part is applied).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class EvoNorm2dS0Impl : public torch::nn::Module {
 public:
  // Groups are channels / group_size when group_size > 0, else `groups`.
  EvoNorm2dS0Impl(int64_t channels, int64_t groups = 32, int64_t group_size = 0, bool apply_act = true,
                  double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias, v;

 private:
  int64_t groups_;
  double eps_;
};
TORCH_MODULE(EvoNorm2dS0);

}  // namespace smp::timm::layers
