// Spatial-reduction attention: queries from every token, keys and values from a reduced grid. The
// reduction is a strided conv of sr_ratio then LayerNorm (PVT, PVTv2, Twins' global attention,
// SegFormer's MiT), or in PVTv2's linear mode a 7x7 adaptive average pool, a 1x1 conv, LayerNorm and
// GELU. Parameter names as those models': q, kv, proj, sr, norm.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

struct SrAttentionOptions {
  SrAttentionOptions(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, sr_ratio) = 1;
  TORCH_ARG(bool, linear) = false;
  TORCH_ARG(double, norm_eps) = 1e-5;
  TORCH_ARG(double, proj_drop) = 0.0;  // dropout after proj (training only)
};

class SrAttentionImpl : public torch::nn::Module {
 public:
  explicit SrAttentionImpl(const SrAttentionOptions& options);
  // x: [B, N, C], the tokens of an h x w map in row-major order.
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w);

 private:
  SrAttentionOptions options_;
  torch::nn::Linear q{nullptr}, kv{nullptr}, proj{nullptr};
  torch::nn::Conv2d sr{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SrAttention);

}  // namespace smp::timm::layers
