// timm's Mlp (fc1 -> act -> dropout -> fc2 -> dropout), as Linear layers or as 1x1 convolutions
// (ConvMlp style).
#pragma once

#include <torch/torch.h>

#include "timm/layers/activations.h"

namespace smp::timm::layers {

struct MlpOptions {
  MlpOptions(int64_t in_features, int64_t hidden_features)
      : in_features_(in_features), hidden_features_(hidden_features), out_features_(in_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, hidden_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(std::string, act) = "gelu";
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(bool, use_conv) = false;  // 1x1 convs over NCHW instead of Linear over the last dim
  TORCH_ARG(double, drop) = 0.0;      // dropout probability of both dropouts (training only)
};

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const MlpOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::AnyModule fc1_, fc2_;
  ActFn act_;
  double drop_;
};
TORCH_MODULE(Mlp);

// LayerNorm over the channel dimension of an NCHW tensor (timm's LayerNorm2d).
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

}  // namespace smp::timm::layers

namespace smp::timm::layers {

// timm's SwiGLU: act(fc1_g(x)) * fc1_x(x) [-> norm] -> fc2, over the last dimension.
class SwiGLUImpl : public torch::nn::Module {
 public:
  SwiGLUImpl(int64_t in_features, int64_t hidden_features, const std::string& act = "silu", bool bias = true,
             bool layer_norm = false, double norm_eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_g_{nullptr}, fc1_x_{nullptr}, fc2_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  ActFn act_;
};
TORCH_MODULE(SwiGLU);

// timm's GluMlp over the last dimension: fc1 to twice the width, one half gating the other -> fc2.
// The gate is the first half (gate_last = false: timm's SwiGLUPacked) or the second (timm's default).
class GluMlpImpl : public torch::nn::Module {
 public:
  GluMlpImpl(int64_t in_features, int64_t hidden_features, const std::string& act = "silu", bool gate_last = false);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  ActFn act_;
  bool gate_last_;
};
TORCH_MODULE(GluMlp);

}  // namespace smp::timm::layers
