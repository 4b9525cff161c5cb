#include "timm/layers/grn.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

GlobalResponseNormImpl::GlobalResponseNormImpl(int64_t dim, double eps, bool channels_last)
    : eps_(eps), channels_last_(channels_last) {
  weight = register_parameter("weight", torch::zeros({dim}));
  bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor GlobalResponseNormImpl::forward(const torch::Tensor& x) {
  const std::vector<int64_t> spatial = channels_last_ ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 3};
  const int64_t channel = channels_last_ ? -1 : 1;
  const std::vector<int64_t> shape =
      channels_last_ ? std::vector<int64_t>{1, 1, 1, -1} : std::vector<int64_t>{1, -1, 1, 1};
  auto gx = torch::linalg_vector_norm(x, 2, spatial, /*keepdim=*/true);
  auto nx = gx / (gx.mean(channel, /*keepdim=*/true) + eps_);
  return x + torch::addcmul(bias.view(shape), weight.view(shape), x * nx);
}

GlobalResponseNormMlpImpl::GlobalResponseNormMlpImpl(const MlpOptions& o) : act_(get_act(o.act())) {
  auto linear = [&o](int64_t in, int64_t out) {
    if (o.use_conv()) return nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(o.bias())));
    return nn::AnyModule(nn::Linear(nn::LinearOptions(in, out).bias(o.bias())));
  };
  fc1_ = linear(o.in_features(), o.hidden_features());
  register_module("fc1", fc1_.ptr());
  grn_ = register_module("grn", GlobalResponseNorm(o.hidden_features(), 1e-6, /*channels_last=*/!o.use_conv()));
  fc2_ = linear(o.hidden_features(), o.out_features());
  register_module("fc2", fc2_.ptr());
}

torch::Tensor GlobalResponseNormMlpImpl::forward(const torch::Tensor& x) {
  return fc2_.forward(grn_(act_(fc1_.forward(x))));
}

}  // namespace smp::timm::layers
