#include "timm/layers/pool2d_same.h"

namespace smp::timm::layers {

namespace {

// Total padding that makes a strided window cover ceil(size / stride) outputs.
int64_t same_padding(int64_t size, int64_t kernel, int64_t stride) {
  const int64_t out = (size + stride - 1) / stride;
  return std::max<int64_t>((out - 1) * stride + kernel - size, 0);
}

}  // namespace

AvgPool2dSameImpl::AvgPool2dSameImpl(int64_t kernel_size, int64_t stride, bool ceil_mode, bool count_include_pad)
    : kernel_size_(kernel_size), stride_(stride), ceil_mode_(ceil_mode), count_include_pad_(count_include_pad) {}

torch::Tensor AvgPool2dSameImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  const int64_t ph = same_padding(x.size(-2), kernel_size_, stride_);
  const int64_t pw = same_padding(x.size(-1), kernel_size_, stride_);
  auto padded = F::pad(x, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
  return F::avg_pool2d(padded, F::AvgPool2dFuncOptions(kernel_size_)
                                   .stride(stride_)
                                   .ceil_mode(ceil_mode_)
                                   .count_include_pad(count_include_pad_));
}

}  // namespace smp::timm::layers
