// timm's HaloAttn (HaloNet): multi-head attention of each block x block tile of queries over the
// tile plus a halo of neighbours, with relative position logits ("pos_embed": height_rel,
// width_rel). Also the relative-logit helper BottleneckAttn shares.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace smp::timm::layers {

// Relative position logits along the last spatial axis of q [B, H, W, d] for a window of `win`
// positions (rel_k [2 * win - 1, d]): [B, H, expand, W, win] permuted by `permute`.
torch::Tensor rel_logits_1d(const torch::Tensor& q, const torch::Tensor& rel_k, int64_t expand,
                            const std::vector<int64_t>& permute);

struct HaloAttnOptions {
  explicit HaloAttnOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, num_heads) = 8;
  TORCH_ARG(int64_t, dim_head) = 0;  // 0: from qk_ratio
  TORCH_ARG(int64_t, block_size) = 8;
  TORCH_ARG(int64_t, halo_size) = 3;
  TORCH_ARG(double, qk_ratio) = 1.0;
};

class HaloAttnImpl : public torch::nn::Module {
 public:
  explicit HaloAttnImpl(const HaloAttnOptions& o);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_, dim_head_qk_, dim_head_v_, block_size_, block_size_ds_, halo_size_, win_size_, block_stride_;
  bool avg_pool_ = false;
  double scale_;
  torch::nn::Conv2d q_{nullptr}, kv_{nullptr};
  torch::Tensor height_rel_, width_rel_;
};
TORCH_MODULE(HaloAttn);

}  // namespace smp::timm::layers
