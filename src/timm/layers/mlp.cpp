#include "timm/layers/mlp.h"

#include "timm/layers/drop_path.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

MlpImpl::MlpImpl(const MlpOptions& o) : act_(get_act(o.act())), drop_(o.drop()) {
  if (o.use_conv()) {
    fc1_ = nn::AnyModule(register_module(
        "fc1", nn::Conv2d(nn::Conv2dOptions(o.in_features(), o.hidden_features(), 1).bias(o.bias()))));
    fc2_ = nn::AnyModule(register_module(
        "fc2", nn::Conv2d(nn::Conv2dOptions(o.hidden_features(), o.out_features(), 1).bias(o.bias()))));
  } else {
    fc1_ = nn::AnyModule(register_module(
        "fc1", nn::Linear(nn::LinearOptions(o.in_features(), o.hidden_features()).bias(o.bias()))));
    fc2_ = nn::AnyModule(register_module(
        "fc2", nn::Linear(nn::LinearOptions(o.hidden_features(), o.out_features()).bias(o.bias()))));
  }
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  // Qualified: ADL would also find ATen's dropout(Tensor, double, bool).
  const auto hidden = layers::dropout(act_(fc1_.forward(x)), drop_, is_training());
  return layers::dropout(fc2_.forward(hidden), drop_, is_training());
}

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  auto y = torch::layer_norm(x.permute({0, 2, 3, 1}), {x.size(1)}, weight, bias, eps_);
  return y.permute({0, 3, 1, 2});
}

}  // namespace smp::timm::layers

namespace smp::timm::layers {

SwiGLUImpl::SwiGLUImpl(int64_t in_features, int64_t hidden_features, const std::string& act, bool bias,
                       bool layer_norm, double norm_eps)
    : act_(get_act(act)) {
  namespace nn = torch::nn;
  fc1_g_ = register_module("fc1_g", nn::Linear(nn::LinearOptions(in_features, hidden_features).bias(bias)));
  fc1_x_ = register_module("fc1_x", nn::Linear(nn::LinearOptions(in_features, hidden_features).bias(bias)));
  if (layer_norm) norm_ = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({hidden_features}).eps(norm_eps)));
  fc2_ = register_module("fc2", nn::Linear(nn::LinearOptions(hidden_features, in_features).bias(bias)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  auto y = act_(fc1_g_(x)) * fc1_x_(x);
  return fc2_(norm_ ? norm_(y) : y);
}

GluMlpImpl::GluMlpImpl(int64_t in_features, int64_t hidden_features, const std::string& act, bool gate_last)
    : act_(get_act(act)), gate_last_(gate_last) {
  fc1_ = register_module("fc1", torch::nn::Linear(in_features, hidden_features * 2));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden_features, in_features));
}

torch::Tensor GluMlpImpl::forward(const torch::Tensor& x) {
  auto halves = fc1_(x).chunk(2, -1);
  return fc2_(gate_last_ ? halves[0] * act_(halves[1]) : act_(halves[0]) * halves[1]);
}

}  // namespace smp::timm::layers
