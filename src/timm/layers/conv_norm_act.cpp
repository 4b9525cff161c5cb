#include "timm/layers/conv_norm_act.h"

#include "timm/layers/conv2d_same.h"
#include "timm/layers/norm_act.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

ConvNormActImpl::ConvNormActImpl(const ConvNormActOptions& o) {
  conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(o.in_channels(), o.out_channels(), o.kernel_size())
                                                 .stride(o.stride())
                                                 .padding(get_padding(o.kernel_size(), o.stride(), o.dilation()))
                                                 .dilation(o.dilation())
                                                 .groups(o.groups())
                                                 .bias(o.bias())));
  bn_ = create_norm_act(o.out_channels(), o.act(), o.norm_group_size());
  register_module("bn", bn_.ptr());
}

torch::Tensor ConvNormActImpl::forward(const torch::Tensor& x) { return bn_.forward(conv_(x)); }

}  // namespace smp::timm::layers
