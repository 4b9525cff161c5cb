#include "timm/layers/layer_scale.h"

namespace smp::timm::layers {

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_value) {
  gamma = register_parameter("gamma", torch::full({dim}, init_value));
}

torch::Tensor LayerScaleImpl::forward(const torch::Tensor& x) { return x * gamma; }

LayerScale2dImpl::LayerScale2dImpl(int64_t dim, double init_value) {
  gamma = register_parameter("gamma", torch::full({dim}, init_value));
}

torch::Tensor LayerScale2dImpl::forward(const torch::Tensor& x) { return x * gamma.view({1, -1, 1, 1}); }

}  // namespace smp::timm::layers
