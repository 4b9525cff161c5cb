// timm's create_aa: the anti-aliasing downsample that replaces a strided convolution. Both kinds are
// parameter-free, so the layer is returned as a function.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace smp::timm::layers {

using TensorFn = std::function<torch::Tensor(const torch::Tensor&)>;

// "avg"/"avgpool": AvgPool2d(stride); "blur"/"blurpool": BlurPool2d (reflect padding); "blurpc":
// BlurPool2d with zero padding. An empty name gives an empty function.
TensorFn create_aa(const std::string& name, int64_t channels, int64_t stride = 2);

}  // namespace smp::timm::layers
