// timm's BlurPool2d: anti-aliased downsampling by a binomial blur filter applied per channel.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

class BlurPool2dImpl : public torch::nn::Module {
 public:
  // `zero_pad`: pad with zeros (timm's 'blurpc' anti-aliasing) instead of reflecting the border.
  explicit BlurPool2dImpl(int64_t channels, int64_t filt_size = 3, int64_t stride = 2, bool zero_pad = false);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t channels_, filt_size_, stride_, pad_;
  bool zero_pad_;
  // timm keeps the filter in a non-persistent buffer (absent from checkpoints); it is a constant,
  // so it is kept here as plain data and moved to the input's device and dtype on use.
  torch::Tensor filt_;
};
TORCH_MODULE(BlurPool2d);

}  // namespace smp::timm::layers
