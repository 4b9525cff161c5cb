// Unet's decoder block and centre block, shared with UnetPlusPlus and MAnet (internal header).
#pragma once

#include <smp/modules.h>

#include <string>

namespace smp::detail {

// Upsample to (height, width) -> [concat skip -> attention1] -> conv1 -> conv2 -> attention2.
class UnetDecoderBlockImpl : public torch::nn::Module {
 public:
  UnetDecoderBlockImpl(int64_t in, int64_t skip, int64_t out, const NormSpec& norm, const std::string& attention,
                       const std::string& interpolation);
  // `skip` undefined: a level without an encoder skip (no concatenation, attention1 not applied).
  torch::Tensor forward(const torch::Tensor& x, int64_t height, int64_t width, const torch::Tensor& skip);

 private:
  torch::nn::functional::InterpolateFuncOptions mode_;
  Block conv1{nullptr}, conv2{nullptr};
  Attention attention1{nullptr}, attention2{nullptr};
};
TORCH_MODULE(UnetDecoderBlock);

// Two 3x3 conv2d_relu keeping the width: smp's centre block for vgg encoders.
torch::nn::Sequential unet_center_block(int64_t channels, const NormSpec& norm);

}  // namespace smp::detail
