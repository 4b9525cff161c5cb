// timm's LambdaLayer (LambdaNetworks): content lambdas from softmaxed keys and values, plus position
// lambdas from a local 3-D convolution over the values (r given, "conv_lambda") or from learned
// relative embeddings over a fixed feature size ("pos_emb"); 2x2 average pool after it at stride 2.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

struct LambdaLayerOptions {
  explicit LambdaLayerOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, num_heads) = 4;
  TORCH_ARG(int64_t, dim_head) = 16;
  TORCH_ARG(int64_t, r) = 9;  // local context size; 0: relative position embeddings (needs feat_h/w)
  TORCH_ARG(int64_t, feat_h) = 0;
  TORCH_ARG(int64_t, feat_w) = 0;
};

class LambdaLayerImpl : public torch::nn::Module {
 public:
  explicit LambdaLayerImpl(const LambdaLayerOptions& o);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_, dim_qk_, dim_v_, stride_, feat_h_ = 0, feat_w_ = 0;
  torch::nn::Conv2d qkv_{nullptr};
  torch::nn::BatchNorm2d norm_q_{nullptr}, norm_v_{nullptr};
  torch::nn::Conv3d conv_lambda_{nullptr};
  torch::Tensor pos_emb_, rel_index_;  // rel_index_: flat (row, col) index into pos_emb per (query, key)
};
TORCH_MODULE(LambdaLayer);

}  // namespace smp::timm::layers
