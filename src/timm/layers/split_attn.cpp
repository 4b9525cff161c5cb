#include "timm/layers/split_attn.h"

#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

SplitAttnImpl::SplitAttnImpl(const SplitAttnOptions& o) : radix_(o.radix()), groups_(o.groups()) {
  const int64_t mid = o.out_channels() * radix_;
  const int64_t attn = make_divisible(static_cast<double>(o.in_channels() * radix_) * o.rd_ratio(), o.rd_divisor(), 32);
  conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(o.in_channels(), mid, o.kernel_size())
                                                 .stride(o.stride())
                                                 .padding(o.padding())
                                                 .dilation(o.dilation())
                                                 .groups(groups_ * radix_)
                                                 .bias(false)));
  bn0_ = register_module("bn0", nn::BatchNorm2d(mid));
  fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(o.out_channels(), attn, 1).groups(groups_)));
  bn1_ = register_module("bn1", nn::BatchNorm2d(attn));
  fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(attn, mid, 1).groups(groups_)));
}

torch::Tensor SplitAttnImpl::forward(const torch::Tensor& input) {
  auto x = bn0_(conv_(input)).relu_();
  const int64_t b = x.size(0), rc = x.size(1), h = x.size(2), w = x.size(3);
  if (radix_ > 1) x = x.reshape({b, radix_, rc / radix_, h, w});
  auto gap = (radix_ > 1 ? x.sum(1) : x).mean({2, 3}, /*keepdim=*/true);
  auto logits = fc2_(bn1_(fc1_(gap)).relu_());
  torch::Tensor weights;
  if (radix_ > 1) {
    // Channels are laid out (group, branch, c): softmax over the branches, back to (branch, group, c).
    weights = logits.view({b, groups_, radix_, -1}).transpose(1, 2).softmax(1).reshape({b, radix_, rc / radix_, 1, 1});
    return (x * weights).sum(1);
  }
  return x * logits.sigmoid();
}

}  // namespace smp::timm::layers
