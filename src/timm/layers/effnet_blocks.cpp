#include "timm/layers/effnet_blocks.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

EffSqueezeExciteImpl::EffSqueezeExciteImpl(int64_t channels, int64_t rd_channels, const std::string& act,
                                           const std::string& gate)
    : act_(get_act(act)), gate_(get_act(gate)) {
  conv_reduce_ = register_module("conv_reduce", nn::Conv2d(nn::Conv2dOptions(channels, rd_channels, 1).bias(true)));
  conv_expand_ = register_module("conv_expand", nn::Conv2d(nn::Conv2dOptions(rd_channels, channels, 1).bias(true)));
}

torch::Tensor EffSqueezeExciteImpl::forward(const torch::Tensor& x) {
  return x * gate_(conv_expand_(act_(conv_reduce_(x.mean({2, 3}, /*keepdim=*/true)))));
}

EffConvBnActImpl::EffConvBnActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                   const std::string& act) {
  conv = register_module(
      "conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false)));
  bn1 = register_module("bn1", BatchNormAct2d(out, act));
}

}  // namespace smp::timm::layers
