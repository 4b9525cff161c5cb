#include "timm/layers/global_context.h"

#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

GlobalContextImpl::GlobalContextImpl(int64_t channels, double rd_ratio, const std::string& act) : act_(get_act(act)) {
  const int64_t hidden = make_divisible(static_cast<double>(channels) * rd_ratio, 1, 0.0, 0.0);
  conv_attn_ = register_module("conv_attn", nn::Conv2d(nn::Conv2dOptions(channels, 1, 1).bias(true)));
  mlp_scale_ = register_module("mlp_scale", std::make_shared<nn::Module>());
  fc1_ = mlp_scale_->register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, hidden, 1).bias(true)));
  norm_ = mlp_scale_->register_module("norm", LayerNorm2d(hidden));
  fc2_ = mlp_scale_->register_module("fc2", nn::Conv2d(nn::Conv2dOptions(hidden, channels, 1).bias(true)));
}

torch::Tensor GlobalContextImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  auto attn = torch::softmax(conv_attn_(x).reshape({b, 1, hw}), -1).unsqueeze(3);  // [B, 1, HW, 1]
  auto context = torch::matmul(x.reshape({b, c, hw}).unsqueeze(1), attn).view({b, c, 1, 1});
  auto scale = fc2_(act_(norm_(fc1_(context))));
  return x * torch::sigmoid(scale);
}

}  // namespace smp::timm::layers
