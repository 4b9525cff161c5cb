#include "timm/layers/create_aa.h"

#include "timm/layers/blur_pool.h"

namespace smp::timm::layers {

TensorFn create_aa(const std::string& name, int64_t channels, int64_t stride) {
  if (name.empty()) return {};
  if (name == "avg" || name == "avgpool")
    return [stride](const torch::Tensor& x) { return torch::avg_pool2d(x, {stride, stride}, {stride, stride}); };
  if (name == "blur" || name == "blurpool" || name == "blurpc") {
    auto blur = BlurPool2d(channels, 3, stride, /*zero_pad=*/name == "blurpc");
    return [blur](const torch::Tensor& x) mutable { return blur(x); };
  }
  throw std::invalid_argument("unknown anti-aliasing layer '" + name + "'");
}

}  // namespace smp::timm::layers
