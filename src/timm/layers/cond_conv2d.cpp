#include "timm/layers/cond_conv2d.h"

#include "timm/layers/conv2d_same.h"

namespace smp::timm::layers {

CondConv2dImpl::CondConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const ConvArgs& a,
                               int64_t num_experts)
    : in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_size_(kernel_size),
      stride_(a.stride()),
      dilation_(a.dilation()),
      groups_(a.depthwise() ? in_channels : a.groups()),
      padding_(0),
      dynamic_pad_(false) {
  if (a.padding() == "same") {
    dynamic_pad_ = !is_static_pad(kernel_size, stride_, dilation_);
    if (!dynamic_pad_) padding_ = get_padding(kernel_size, stride_, dilation_);
  } else if (a.padding().empty()) {
    padding_ = get_padding(kernel_size, stride_, dilation_);
  } else if (a.padding() != "valid") {
    throw std::invalid_argument("unknown padding mode '" + a.padding() + "'");
  }
  const int64_t numel = out_channels * (in_channels / groups_) * kernel_size * kernel_size;
  const double bound = 1.0 / std::sqrt(static_cast<double>(numel / out_channels));
  weight = register_parameter("weight", torch::empty({num_experts, numel}).uniform_(-bound, bound));
  if (a.bias()) bias = register_parameter("bias", torch::empty({num_experts, out_channels}).uniform_(-bound, bound));
}

torch::Tensor CondConv2dImpl::forward(const torch::Tensor& x, const torch::Tensor& routing_weights) {
  namespace F = torch::nn::functional;
  const int64_t b = x.size(0);
  // Each sample gets its own mixed kernel: fold the batch into the channels and convolve in groups.
  auto w = torch::matmul(routing_weights, weight)
               .view({b * out_channels_, in_channels_ / groups_, kernel_size_, kernel_size_});
  torch::Tensor bb;
  if (bias.defined()) bb = torch::matmul(routing_weights, bias).view({b * out_channels_});
  auto y = x.reshape({1, b * x.size(1), x.size(2), x.size(3)});
  if (dynamic_pad_) y = pad_same(y, kernel_size_, stride_, dilation_);
  y = F::conv2d(
      y, w, F::Conv2dFuncOptions().bias(bb).stride(stride_).padding(padding_).dilation(dilation_).groups(groups_ * b));
  return y.permute({1, 0, 2, 3}).reshape({b, out_channels_, y.size(-2), y.size(-1)});
}

}  // namespace smp::timm::layers
