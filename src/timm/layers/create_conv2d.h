// timm's create_conv2d: the convolution of EfficientNet-style blocks, chosen from the kernel spec
// (one size: a plain convolution; several: MixedConv2d) and timm's padding mode.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace smp::timm::layers {

struct ConvArgs {
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, depthwise) = false;  // groups = input channels (per kernel group for MixedConv2d)
  TORCH_ARG(bool, bias) = false;
  // "" (PyTorch-style symmetric padding), "same" (TensorFlow 'SAME') or "valid" (none).
  TORCH_ARG(std::string, padding) = "";
};

// A single Conv2d (or Conv2dSame when 'SAME' padding depends on the input size).
torch::nn::AnyModule create_conv2d_pad(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                       const ConvArgs& args);

// `kernel_sizes` with one entry: create_conv2d_pad; several: a MixedConv2d splitting the channels
// into one group per kernel size.
torch::nn::AnyModule create_conv2d(int64_t in_channels, int64_t out_channels, const std::vector<int64_t>& kernel_sizes,
                                   const ConvArgs& args);

}  // namespace smp::timm::layers
