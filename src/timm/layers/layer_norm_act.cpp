#include "timm/layers/layer_norm_act.h"

namespace smp::timm::layers {

LayerNormAct2dImpl::LayerNormAct2dImpl(int64_t channels, const std::string& act, double eps)
    : LayerNorm2dImpl(channels, eps), act_(get_act(act)) {}

torch::Tensor LayerNormAct2dImpl::forward(const torch::Tensor& x) { return act_(LayerNorm2dImpl::forward(x)); }

}  // namespace smp::timm::layers
