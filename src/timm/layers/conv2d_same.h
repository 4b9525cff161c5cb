// timm's padding helpers and Conv2dSame: TensorFlow-style 'SAME' padding for convolutions whose
// padding cannot be expressed as a symmetric constant (even kernels, strided convs).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

// timm's get_padding: symmetric padding that keeps a stride-1 convolution's output size.
int64_t get_padding(int64_t kernel, int64_t stride = 1, int64_t dilation = 1);
// True when 'SAME' padding is symmetric and independent of the input size.
bool is_static_pad(int64_t kernel, int64_t stride = 1, int64_t dilation = 1);
// Zero-pads the last two dims of `x` (extra pixel on the right/bottom) so a convolution with these
// settings produces ceil(size / stride) outputs.
torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t dilation);

// Conv2d with input-dependent 'SAME' padding; its parameters are a plain Conv2d's ("weight", "bias").
class Conv2dSameImpl : public torch::nn::Conv2dImpl {
 public:
  // The options' padding is ignored (replaced by the dynamic padding).
  explicit Conv2dSameImpl(torch::nn::Conv2dOptions options);
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(Conv2dSame);

// timm's create_conv2d(..., padding='same'): a Conv2d with static symmetric padding where that is
// exact, otherwise a Conv2dSame. Square kernels, strides and dilations only.
torch::nn::AnyModule create_conv2d_same(torch::nn::Conv2dOptions options);

}  // namespace smp::timm::layers
