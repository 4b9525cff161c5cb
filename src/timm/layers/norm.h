// timm's scale-only normalisations over channels: RmsNorm (x / rms(x)) and SimpleNorm (x / std(x),
// no centring). `nchw` selects the *2d forms that normalise dim 1 of NCHW tensors; otherwise the last
// dim is normalised (channels-last).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class RmsNormImpl : public torch::nn::Module {
 public:
  explicit RmsNormImpl(int64_t channels, double eps = 1e-6, bool nchw = false);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
  bool nchw_;
};
TORCH_MODULE(RmsNorm);

class SimpleNormImpl : public torch::nn::Module {
 public:
  explicit SimpleNormImpl(int64_t channels, double eps = 1e-6, bool nchw = false);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
  bool nchw_;
};
TORCH_MODULE(SimpleNorm);

}  // namespace smp::timm::layers
