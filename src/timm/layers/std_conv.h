// timm's weight-standardised convolutions: StdConv2d (BiT / ResNet-V2, ViT hybrids) and
// ScaledStdConv2d (normalisation-free nets), each optionally with TensorFlow-style 'SAME' padding.
// The kernel is standardised per output channel on every call; the parameters keep the names of
// timm's modules ("weight", "bias", and "gain" for the scaled form).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

struct StdConv2dOptions {
  StdConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(double, eps) = 1e-6;
  // 'SAME' padding (the *Same variants): symmetric where that is exact, else padded per input size.
  // Otherwise timm's get_padding (symmetric, size-preserving at stride 1).
  TORCH_ARG(bool, same) = false;
};

// Weight standardisation: each output channel's kernel is shifted to zero mean and scaled to unit
// (biased) variance, as timm does with batch_norm over the reshaped weight.
class StdConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  explicit StdConv2dImpl(const StdConv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // The standardised kernel the convolution uses.
  torch::Tensor standardized_weight() const;

 private:
  double eps_;
  int64_t dynamic_pad_kernel_ = 0;  // > 0: pad_same before the convolution
};
TORCH_MODULE(StdConv2d);

// Scaled weight standardisation: the standardised kernel times gain * gamma / sqrt(fan_in), with a
// learnt per-channel "gain" [out, 1, 1, 1]. Bias on by default in timm (set options.bias(true)).
class ScaledStdConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  ScaledStdConv2dImpl(const StdConv2dOptions& options, double gamma = 1.0);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor standardized_weight() const;
  torch::Tensor gain;

 private:
  double eps_, scale_;
  int64_t dynamic_pad_kernel_ = 0;
};
TORCH_MODULE(ScaledStdConv2d);

}  // namespace smp::timm::layers
