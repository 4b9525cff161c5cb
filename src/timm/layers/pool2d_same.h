// timm's AvgPool2dSame: average pooling with TensorFlow-style 'SAME' zero padding added explicitly
// (so the padded zeros count towards the average whatever count_include_pad says).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class AvgPool2dSameImpl : public torch::nn::Module {
 public:
  AvgPool2dSameImpl(int64_t kernel_size, int64_t stride, bool ceil_mode = false, bool count_include_pad = true);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t kernel_size_, stride_;
  bool ceil_mode_, count_include_pad_;
};
TORCH_MODULE(AvgPool2dSame);

}  // namespace smp::timm::layers
