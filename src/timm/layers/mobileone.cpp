#include "timm/layers/mobileone.h"

#include "timm/layers/drop_path.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

namespace {
// a + b where an undefined tensor stands for a branch that is absent.
torch::Tensor sum_branches(const torch::Tensor& a, const torch::Tensor& b) { return a.defined() ? a + b : b; }
}  // namespace

std::pair<torch::Tensor, torch::Tensor> fuse_bn(const torch::Tensor& kernel, const BatchNormAct2dImpl& bn) {
  auto scale = bn.weight / (bn.running_var + bn.eps()).sqrt();
  return {kernel * scale.view({-1, 1, 1, 1}), bn.bias - bn.running_mean * scale};
}

std::pair<torch::Tensor, torch::Tensor> fuse_conv_bn(ConvNormActImpl& conv_bn) {
  auto children = conv_bn.named_children();
  const auto* bn = children["bn"]->as<BatchNormAct2d>();
  TORCH_CHECK(bn != nullptr, "only a conv + BatchNorm pair can be folded");
  return fuse_bn(children["conv"]->as<nn::Conv2d>()->weight, *bn);
}

torch::Tensor identity_kernel(int64_t channels, int64_t groups, int64_t kernel_h, int64_t kernel_w,
                              const torch::TensorOptions& options) {
  const int64_t per_group = channels / groups;
  auto kernel = torch::zeros({channels, per_group, kernel_h, kernel_w}, options);
  for (int64_t i = 0; i < channels; ++i) kernel[i][i % per_group][kernel_h / 2][kernel_w / 2] = 1.0;
  return kernel;
}

nn::Conv2d folded_conv(const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride, int64_t groups) {
  const auto kh = weight.size(2), kw = weight.size(3);
  nn::Conv2d conv(nn::Conv2dOptions(weight.size(1) * groups, weight.size(0), {kh, kw})
                      .stride(stride)
                      .padding({kh / 2, kw / 2})
                      .groups(groups)
                      .bias(true));
  conv->to(weight.device(), weight.scalar_type());
  torch::NoGradGuard no_grad;
  conv->weight.copy_(weight);
  conv->bias.copy_(bias);
  return conv;
}

MobileOneBlockImpl::MobileOneBlockImpl(const MobileOneBlockOptions& o, nn::AnyModule attn)
    : options_(o), attn_(std::move(attn)), act_(get_act(o.act())) {
  if (o.in_channels() == o.out_channels() && o.stride() == 1 && !o.dilation_changes())
    identity_ = register_module("identity", BatchNormAct2d(o.out_channels(), ""));
  conv_kxk_ = register_module("conv_kxk", nn::ModuleList());
  for (int64_t i = 0; i < o.num_conv_branches(); ++i)
    conv_kxk_->push_back(ConvNormAct(ConvNormActOptions(o.in_channels(), o.out_channels(), o.kernel_size())
                                         .stride(o.stride())
                                         .groups(o.groups())
                                         .act("")));
  if (o.kernel_size() > 1 && o.scale_branch())
    conv_scale_ = register_module("conv_scale", ConvNormAct(ConvNormActOptions(o.in_channels(), o.out_channels(), 1)
                                                                .stride(o.stride())
                                                                .groups(o.groups())
                                                                .act("")));
  if (!attn_.is_empty()) register_module(o.attn_name(), attn_.ptr());
}

torch::Tensor MobileOneBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (reparam_conv_) {
    y = reparam_conv_(x);
  } else {
    y = conv_scale_ ? conv_scale_(x) : torch::zeros({}, x.options());
    for (const auto& branch : *conv_kxk_) y = y + branch->as<ConvNormAct>()->forward(x);
    if (identity_) y = layers::drop_path(y, options_.drop_path_rate(), is_training()) + identity_(x);
  }
  if (!attn_.is_empty()) y = attn_.forward(y);
  return act_(y);
}

std::pair<torch::Tensor, torch::Tensor> MobileOneBlockImpl::kernel_bias() {
  if (reparam_conv_) return {reparam_conv_->weight, reparam_conv_->bias};
  const auto k = options_.kernel_size();
  torch::Tensor kernel, bias;
  for (const auto& branch : *conv_kxk_) {
    auto [w, b] = fuse_conv_bn(*branch->as<ConvNormAct>());
    kernel = sum_branches(kernel, w);
    bias = sum_branches(bias, b);
  }
  if (conv_scale_) {
    auto [w, b] = fuse_conv_bn(*conv_scale_);
    kernel = sum_branches(kernel, torch::constant_pad_nd(w, {k / 2, k / 2, k / 2, k / 2}));
    bias = sum_branches(bias, b);
  }
  if (identity_) {
    auto eye = identity_kernel(options_.in_channels(), options_.groups(), k, k, identity_->weight.options());
    auto [w, b] = fuse_bn(eye, *identity_);
    kernel = sum_branches(kernel, w);
    bias = sum_branches(bias, b);
  }
  return {kernel, bias};
}

bool MobileOneBlockImpl::reparameterize() {
  if (reparam_conv_) return false;
  torch::NoGradGuard no_grad;
  auto [kernel, bias] = kernel_bias();
  reparam_conv_ = register_module("reparam_conv", folded_conv(kernel, bias, options_.stride(), options_.groups()));
  for (const char* name : {"conv_kxk", "conv_scale", "identity"})
    if (named_children().contains(name)) unregister_module(name);
  conv_kxk_ = nullptr;
  conv_scale_ = nullptr;
  identity_ = nullptr;
  return true;
}

}  // namespace smp::timm::layers
