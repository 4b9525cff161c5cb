// timm's LayerNormAct2d: LayerNorm over the channels of an NCHW tensor ("weight", "bias"), then an
// activation.
#pragma once

#include <torch/torch.h>

#include <string>

#include "timm/layers/activations.h"
#include "timm/layers/mlp.h"

namespace smp::timm::layers {

class LayerNormAct2dImpl : public LayerNorm2dImpl {
 public:
  // `act` by timm's name; "" for none.
  LayerNormAct2dImpl(int64_t channels, const std::string& act, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  ActFn act_;
};
TORCH_MODULE(LayerNormAct2d);

}  // namespace smp::timm::layers
