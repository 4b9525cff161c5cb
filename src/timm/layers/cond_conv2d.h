// timm's CondConv2d: a convolution whose kernel is a per-sample mixture of `num_experts` expert
// kernels, weighted by routing weights computed outside. Parameters: "weight" [experts, kernel numel]
// and optionally "bias" [experts, out_channels].
#pragma once

#include <torch/torch.h>

#include "timm/layers/create_conv2d.h"

namespace smp::timm::layers {

class CondConv2dImpl : public torch::nn::Module {
 public:
  CondConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const ConvArgs& args,
                 int64_t num_experts);
  // `routing_weights`: [batch, num_experts].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& routing_weights);

  torch::Tensor weight, bias;

 private:
  int64_t in_channels_, out_channels_, kernel_size_, stride_, dilation_, groups_, padding_;
  bool dynamic_pad_;
};
TORCH_MODULE(CondConv2d);

}  // namespace smp::timm::layers
