// timm's BottleneckAttn (BoTNet): global multi-head self-attention over a fixed-size feature map
// with 2-D relative position logits ("pos_embed": height_rel, width_rel); 2x2 average pool after
// it at stride 2.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

struct BottleneckAttnOptions {
  BottleneckAttnOptions(int64_t dim, int64_t feat_h, int64_t feat_w) : dim_(dim), feat_h_(feat_h), feat_w_(feat_w) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, feat_h);  // the input size the position tables are made for
  TORCH_ARG(int64_t, feat_w);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, num_heads) = 4;
  TORCH_ARG(int64_t, dim_head) = 0;  // 0: from qk_ratio
  TORCH_ARG(double, qk_ratio) = 1.0;
};

class BottleneckAttnImpl : public torch::nn::Module {
 public:
  explicit BottleneckAttnImpl(const BottleneckAttnOptions& o);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_, dim_head_qk_, dim_head_v_, feat_h_, feat_w_, stride_;
  double scale_;
  torch::nn::Conv2d qkv_{nullptr};
  torch::Tensor height_rel_, width_rel_;
};
TORCH_MODULE(BottleneckAttn);

}  // namespace smp::timm::layers
