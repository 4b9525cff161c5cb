#include "timm/layers/norm.h"

namespace smp::timm::layers {

namespace {
torch::Tensor scale(const torch::Tensor& x, const torch::Tensor& weight, bool nchw) {
  return nchw ? x * weight.reshape({1, -1, 1, 1}) : x * weight;
}
}  // namespace

RmsNormImpl::RmsNormImpl(int64_t channels, double eps, bool nchw) : eps_(eps), nchw_(nchw) {
  weight = register_parameter("weight", torch::ones({channels}));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  const int64_t dim = nchw_ ? 1 : -1;
  auto v = x.pow(2).mean(dim, /*keepdim=*/true);
  return scale(x * torch::rsqrt(v + eps_), weight, nchw_);
}

SimpleNormImpl::SimpleNormImpl(int64_t channels, double eps, bool nchw) : eps_(eps), nchw_(nchw) {
  weight = register_parameter("weight", torch::ones({channels}));
}

torch::Tensor SimpleNormImpl::forward(const torch::Tensor& x) {
  const int64_t dim = nchw_ ? 1 : -1;
  // timm uses torch.var's default, the unbiased estimate.
  auto v = x.var(dim, /*unbiased=*/true, /*keepdim=*/true);
  return scale(x * torch::rsqrt(v + eps_), weight, nchw_);
}

}  // namespace smp::timm::layers
