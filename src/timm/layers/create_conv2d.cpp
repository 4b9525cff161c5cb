#include "timm/layers/create_conv2d.h"

#include "timm/layers/conv2d_same.h"
#include "timm/layers/mixed_conv2d.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

nn::AnyModule create_conv2d_pad(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const ConvArgs& a) {
  const int64_t groups = a.depthwise() ? in_channels : a.groups();
  auto options = nn::Conv2dOptions(in_channels, out_channels, kernel_size)
                     .stride(a.stride())
                     .dilation(a.dilation())
                     .groups(groups)
                     .bias(a.bias());
  if (a.padding() == "same") return create_conv2d_same(options);
  if (a.padding() == "valid") return nn::AnyModule(nn::Conv2d(options.padding(0)));
  if (!a.padding().empty()) throw std::invalid_argument("unknown padding mode '" + a.padding() + "'");
  return nn::AnyModule(nn::Conv2d(options.padding(get_padding(kernel_size, a.stride(), a.dilation()))));
}

nn::AnyModule create_conv2d(int64_t in_channels, int64_t out_channels, const std::vector<int64_t>& kernel_sizes,
                            const ConvArgs& a) {
  if (kernel_sizes.empty()) throw std::invalid_argument("create_conv2d needs at least one kernel size");
  if (kernel_sizes.size() == 1) return create_conv2d_pad(in_channels, out_channels, kernel_sizes[0], a);
  bool depthwise = a.depthwise();
  if (!depthwise && a.groups() != 1) {
    if (a.groups() != in_channels)
      throw std::invalid_argument("MixedConv2d supports only depthwise or ungrouped convolutions");
    depthwise = true;
  }
  return nn::AnyModule(
      MixedConv2d(in_channels, out_channels, kernel_sizes, ConvArgs(a).groups(1).depthwise(depthwise)));
}

}  // namespace smp::timm::layers
