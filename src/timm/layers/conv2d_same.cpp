#include "timm/layers/conv2d_same.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

int64_t get_padding(int64_t kernel, int64_t stride, int64_t dilation) {
  return ((stride - 1) + dilation * (kernel - 1)) / 2;
}

bool is_static_pad(int64_t kernel, int64_t stride, int64_t dilation) {
  return stride == 1 && (dilation * (kernel - 1)) % 2 == 0;
}

namespace {
int64_t same_padding(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (size + stride - 1) / stride;
  return std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
}
}  // namespace

torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t dilation) {
  namespace F = torch::nn::functional;
  const int64_t ph = same_padding(x.size(-2), kernel, stride, dilation);
  const int64_t pw = same_padding(x.size(-1), kernel, stride, dilation);
  if (ph == 0 && pw == 0) return x;
  return F::pad(x, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
}

Conv2dSameImpl::Conv2dSameImpl(nn::Conv2dOptions options) : nn::Conv2dImpl(options.padding(0)) {}

torch::Tensor Conv2dSameImpl::forward(const torch::Tensor& x) {
  const auto& o = options;
  return nn::Conv2dImpl::forward(pad_same(x, o.kernel_size()->at(0), o.stride()->at(0), o.dilation()->at(0)));
}

nn::AnyModule create_conv2d_same(nn::Conv2dOptions options) {
  const int64_t k = options.kernel_size()->at(0), s = options.stride()->at(0), d = options.dilation()->at(0);
  if (is_static_pad(k, s, d)) return nn::AnyModule(nn::Conv2d(options.padding(get_padding(k, s, d))));
  return nn::AnyModule(Conv2dSame(options));
}

}  // namespace smp::timm::layers
