#include "timm/layers/selective_kernel.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "timm/layers/conv_norm_act.h"
#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

SelectiveKernelAttnImpl::SelectiveKernelAttnImpl(int64_t channels, int64_t num_paths, int64_t attn_channels)
    : num_paths_(num_paths) {
  fc_reduce_ = register_module("fc_reduce", nn::Conv2d(nn::Conv2dOptions(channels, attn_channels, 1).bias(false)));
  bn_ = register_module("bn", nn::BatchNorm2d(attn_channels));
  fc_select_ =
      register_module("fc_select", nn::Conv2d(nn::Conv2dOptions(attn_channels, channels * num_paths, 1).bias(false)));
}

torch::Tensor SelectiveKernelAttnImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.size(1) == num_paths_, "SelectiveKernelAttn expects ", num_paths_, " paths, got ", x.size(1));
  auto y = x.sum(1).mean({2, 3}, /*keepdim=*/true);
  y = fc_select_(bn_(fc_reduce_(y)).relu_());
  y = y.view({y.size(0), num_paths_, y.size(1) / num_paths_, y.size(2), y.size(3)});
  return torch::softmax(y, 1);
}

SelectiveKernelImpl::SelectiveKernelImpl(const SelectiveKernelOptions& o)
    : in_channels_(o.in_channels()), split_input_(o.split_input()) {
  auto kernels = o.kernel_size();
  const auto num_paths = static_cast<int64_t>(kernels.size());
  if (num_paths < 1) throw std::invalid_argument("SelectiveKernel needs at least one kernel size");
  for (const auto k : kernels)
    if (k < 3 || k % 2 == 0)
      throw std::invalid_argument("SelectiveKernel kernel sizes must be odd and at least 3, got " + std::to_string(k));
  std::vector<int64_t> dilations(kernels.size(), o.dilation());
  if (o.keep_3x3()) {
    for (size_t i = 0; i < kernels.size(); ++i) {
      dilations[i] = o.dilation() * (kernels[i] - 1) / 2;
      kernels[i] = 3;
    }
  }
  int64_t path_in = o.in_channels();
  if (split_input_) {
    if (path_in % num_paths != 0)
      throw std::invalid_argument("SelectiveKernel: " + std::to_string(path_in) + " input channels do not split into " +
                                  std::to_string(num_paths) + " paths");
    path_in /= num_paths;
  }
  const int64_t groups = std::min(o.out_channels(), o.groups());

  paths_ = register_module("paths", nn::ModuleList());
  for (size_t i = 0; i < kernels.size(); ++i)
    paths_->push_back(ConvNormAct(ConvNormActOptions(path_in, o.out_channels(), kernels[i])
                                      .stride(o.stride())
                                      .dilation(dilations[i])
                                      .groups(groups)));

  const int64_t attn_channels =
      o.rd_channels() > 0 ? o.rd_channels()
                          : make_divisible(static_cast<double>(o.out_channels()) * o.rd_ratio(), o.rd_divisor());
  attn_ = register_module("attn", SelectiveKernelAttn(o.out_channels(), num_paths, attn_channels));
}

torch::Tensor SelectiveKernelImpl::forward(const torch::Tensor& x) {
  const auto num_paths = static_cast<int64_t>(paths_->size());
  std::vector<torch::Tensor> outs;
  outs.reserve(paths_->size());
  if (split_input_) {
    const auto parts = x.split(in_channels_ / num_paths, 1);
    for (size_t i = 0; i < paths_->size(); ++i) outs.push_back(paths_->at<ConvNormActImpl>(i).forward(parts[i]));
  } else {
    for (size_t i = 0; i < paths_->size(); ++i) outs.push_back(paths_->at<ConvNormActImpl>(i).forward(x));
  }
  const auto stacked = torch::stack(outs, 1);
  return (stacked * attn_(stacked)).sum(1);
}

}  // namespace smp::timm::layers
