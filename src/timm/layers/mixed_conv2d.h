// timm's MixedConv2d (MixNet's MDConv): the channels are split into one group per kernel size, each
// group convolved with its own kernel (children "0", "1", ...), and the results concatenated.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "timm/layers/create_conv2d.h"

namespace smp::timm::layers {

class MixedConv2dImpl : public torch::nn::Module {
 public:
  // `args.depthwise` makes each group's convolution depthwise; `args.groups` is ignored.
  MixedConv2dImpl(int64_t in_channels, int64_t out_channels, const std::vector<int64_t>& kernel_sizes,
                  const ConvArgs& args);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::vector<torch::nn::AnyModule> convs_;
  std::vector<int64_t> splits_;
};
TORCH_MODULE(MixedConv2d);

}  // namespace smp::timm::layers
