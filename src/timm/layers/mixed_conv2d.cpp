#include "timm/layers/mixed_conv2d.h"

namespace smp::timm::layers {

namespace {
// Equal shares, the remainder going to the first group.
std::vector<int64_t> split_channels(int64_t channels, size_t groups) {
  const auto n = static_cast<int64_t>(groups);
  std::vector<int64_t> split(groups, channels / n);
  split[0] += channels - (channels / n) * n;
  return split;
}
}  // namespace

MixedConv2dImpl::MixedConv2dImpl(int64_t in_channels, int64_t out_channels, const std::vector<int64_t>& kernel_sizes,
                                 const ConvArgs& args) {
  splits_ = split_channels(in_channels, kernel_sizes.size());
  const auto out_splits = split_channels(out_channels, kernel_sizes.size());
  for (size_t i = 0; i < kernel_sizes.size(); ++i) {
    const int64_t in = splits_[i];
    auto conv = create_conv2d_pad(in, out_splits[i], kernel_sizes[i],
                                  ConvArgs(args).depthwise(false).groups(args.depthwise() ? in : 1));
    register_module(std::to_string(i), conv.ptr());
    convs_.push_back(std::move(conv));
  }
}

torch::Tensor MixedConv2dImpl::forward(const torch::Tensor& x) {
  auto parts = torch::split_with_sizes(x, splits_, 1);
  std::vector<torch::Tensor> out;
  out.reserve(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) out.push_back(convs_[i].forward(parts[i]));
  return torch::cat(out, 1);
}

}  // namespace smp::timm::layers
