#include "timm/layers/evo_norm.h"

namespace smp::timm::layers {

EvoNorm2dS0Impl::EvoNorm2dS0Impl(int64_t channels, int64_t groups, int64_t group_size, bool apply_act, double eps)
    : groups_(groups), eps_(eps) {
  if (group_size > 0) {
    if (channels % group_size != 0)
      throw std::invalid_argument("EvoNorm2dS0 group size " + std::to_string(group_size) + " does not divide " +
                                  std::to_string(channels) + " channels");
    groups_ = channels / group_size;
  }
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  if (apply_act) v = register_parameter("v", torch::ones({channels}));
}

torch::Tensor EvoNorm2dS0Impl::forward(const torch::Tensor& x) {
  const auto shape = std::vector<int64_t>{1, -1, 1, 1};
  auto y = x;
  if (v.defined()) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    if (c % groups_ != 0) throw std::invalid_argument("EvoNorm2dS0: channels not divisible by groups");
    // Per-group standard deviation (population variance), computed in float32 as timm does.
    auto grouped = x.reshape({b, groups_, c / groups_, h, w});
    auto sd = grouped.to(torch::kFloat32).var({2, 3, 4}, /*unbiased=*/false, /*keepdim=*/true).add(eps_).sqrt();
    sd = sd.to(x.scalar_type()).expand(grouped.sizes()).reshape({b, c, h, w});
    y = x * (x * v.view(shape).to(x.scalar_type())).sigmoid() / sd;
  }
  return y * weight.view(shape).to(x.scalar_type()) + bias.view(shape).to(x.scalar_type());
}

}  // namespace smp::timm::layers
