#include "timm/layers/std_conv.h"

#include "timm/layers/conv2d_same.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

namespace {

// The kernel size to pad dynamically for: 'SAME' padding that no static padding reproduces; else 0.
int64_t dynamic_kernel(const StdConv2dOptions& o) {
  return o.same() && !is_static_pad(o.kernel_size(), o.stride(), o.dilation()) ? o.kernel_size() : 0;
}

nn::Conv2dOptions conv_options(const StdConv2dOptions& o) {
  const int64_t k = o.kernel_size(), s = o.stride(), d = o.dilation();
  const int64_t padding = dynamic_kernel(o) > 0 ? 0 : get_padding(k, s, d);
  return nn::Conv2dOptions(o.in_channels(), o.out_channels(), k)
      .stride(s)
      .dilation(d)
      .groups(o.groups())
      .bias(o.bias())
      .padding(padding);
}

// Per-output-channel standardisation of `w` through batch_norm in training mode, exactly as timm
// computes it (biased variance, eps inside the square root), optionally with a per-channel scale.
torch::Tensor standardize(const torch::Tensor& w, const torch::Tensor& scale, double eps) {
  auto flat = w.reshape({1, w.size(0), -1});
  return torch::batch_norm(flat, scale, {}, {}, {}, /*training=*/true, /*momentum=*/0.0, eps,
                           /*cudnn_enabled=*/false)
      .reshape_as(w);
}

// The input with 'SAME' padding added when the convolution needs it per input size.
torch::Tensor padded(const torch::Tensor& x, const nn::detail::ConvNdOptions<2>& o, int64_t dynamic_kernel) {
  return dynamic_kernel > 0 ? pad_same(x, dynamic_kernel, o.stride()->at(0), o.dilation()->at(0)) : x;
}

}  // namespace

StdConv2dImpl::StdConv2dImpl(const StdConv2dOptions& options)
    : nn::Conv2dImpl(conv_options(options)), eps_(options.eps()), dynamic_pad_kernel_(dynamic_kernel(options)) {}

torch::Tensor StdConv2dImpl::standardized_weight() const { return standardize(weight, {}, eps_); }

torch::Tensor StdConv2dImpl::forward(const torch::Tensor& x) {
  return _conv_forward(padded(x, options, dynamic_pad_kernel_), standardized_weight());
}

ScaledStdConv2dImpl::ScaledStdConv2dImpl(const StdConv2dOptions& options, double gamma)
    : nn::Conv2dImpl(conv_options(options)), eps_(options.eps()), dynamic_pad_kernel_(dynamic_kernel(options)) {
  const int64_t fan_in = options.in_channels() / options.groups() * options.kernel_size() * options.kernel_size();
  scale_ = gamma / std::sqrt(static_cast<double>(fan_in));
  gain = register_parameter("gain", torch::ones({options.out_channels(), 1, 1, 1}));
}

torch::Tensor ScaledStdConv2dImpl::standardized_weight() const {
  return standardize(weight, (gain * scale_).view({-1}), eps_);
}

torch::Tensor ScaledStdConv2dImpl::forward(const torch::Tensor& x) {
  return _conv_forward(padded(x, options, dynamic_pad_kernel_), standardized_weight());
}

}  // namespace smp::timm::layers
