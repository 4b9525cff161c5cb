#include "timm/layers/blur_pool.h"

namespace smp::timm::layers {

BlurPool2dImpl::BlurPool2dImpl(int64_t channels, int64_t filt_size, int64_t stride, bool zero_pad)
    : channels_(channels), filt_size_(filt_size), stride_(stride), zero_pad_(zero_pad) {
  if (filt_size < 2) throw std::invalid_argument("BlurPool2d filter size must be >= 2");
  pad_ = ((stride - 1) + (filt_size - 1)) / 2;
  // Binomial coefficients C(n-1, k) / 2^(n-1): the 1-D filter, whose outer product is the 2-D one.
  std::vector<double> coeffs(static_cast<size_t>(filt_size), 1.0);
  for (int64_t k = 1; k < filt_size; ++k)
    coeffs[static_cast<size_t>(k)] = coeffs[static_cast<size_t>(k - 1)] * static_cast<double>(filt_size - k) / k;
  auto c = torch::tensor(coeffs, torch::kFloat32) / std::pow(2.0, static_cast<double>(filt_size - 1));
  filt_ = (c.unsqueeze(1) * c.unsqueeze(0)).view({1, 1, filt_size, filt_size}).repeat({channels, 1, 1, 1});
}

torch::Tensor BlurPool2dImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  auto pad = F::PadFuncOptions({pad_, pad_, pad_, pad_});
  if (!zero_pad_) pad.mode(torch::kReflect);
  auto padded = F::pad(x, pad);
  auto weight = filt_.to(x.device(), x.scalar_type());
  return F::conv2d(padded, weight, F::Conv2dFuncOptions().stride(stride_).groups(channels_));
}

}  // namespace smp::timm::layers
