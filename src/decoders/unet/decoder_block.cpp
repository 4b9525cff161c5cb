#include "decoders/unet/decoder_block.h"

namespace smp::detail {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

UnetDecoderBlockImpl::UnetDecoderBlockImpl(int64_t in, int64_t skip, int64_t out, const NormSpec& norm,
                                           const std::string& attention, const std::string& interpolation)
    : mode_(smp::interpolation(interpolation)) {
  conv1 = register_module("conv1", conv2d_relu(in + skip, out, 3, 1, 1, norm));
  attention1 = register_module("attention1", Attention(attention, in + skip));
  conv2 = register_module("conv2", conv2d_relu(out, out, 3, 1, 1, norm));
  attention2 = register_module("attention2", Attention(attention, out));
}

torch::Tensor UnetDecoderBlockImpl::forward(const torch::Tensor& x, int64_t height, int64_t width,
                                            const torch::Tensor& skip) {
  auto y = resize(x, height, width, mode_);
  if (skip.defined()) y = attention1->forward(torch::cat({y, skip}, 1));
  return attention2->forward(conv2->forward(conv1->forward(y)));
}

nn::Sequential unet_center_block(int64_t channels, const NormSpec& norm) {
  return nn::Sequential(conv2d_relu(channels, channels, 3, 1, 1, norm), conv2d_relu(channels, channels, 3, 1, 1, norm));
}

}  // namespace smp::detail
