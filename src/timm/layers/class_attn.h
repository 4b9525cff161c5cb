// timm's ClassAttn (CaiT): attention where only the class token (token 0) queries all tokens.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class ClassAttnImpl : public torch::nn::Module {
 public:
  ClassAttnImpl(int64_t dim, int64_t num_heads, bool qkv_bias);
  // x: (B, N, C) -> the updated class token, (B, 1, C).
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t num_heads_;
  double scale_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(ClassAttn);

}  // namespace smp::timm::layers
