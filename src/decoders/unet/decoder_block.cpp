#include "decoders/unet/decoder_block.h"

namespace smp::detail {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

InterpolationMode interpolation_mode(const std::string& name) {
  if (name == "nearest") return torch::kNearest;
  if (name == "bilinear") return torch::kBilinear;
  if (name == "bicubic") return torch::kBicubic;
  if (name == "area") return torch::kArea;
  if (name == "nearest-exact") return torch::kNearestExact;
  throw std::invalid_argument("decoder_interpolation must be one of nearest, bilinear, bicubic, area, nearest-exact; got '" +
                              name + "'");
}

torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width, const InterpolationMode& mode) {
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(mode);
  if (c10::holds_alternative<torch::enumtype::kBilinear>(mode) || c10::holds_alternative<torch::enumtype::kBicubic>(mode))
    opts.align_corners(false);
  return F::interpolate(x, opts);
}

UnetDecoderBlockImpl::UnetDecoderBlockImpl(int64_t in, int64_t skip, int64_t out, const NormSpec& norm,
                                           const std::string& attention, const std::string& interpolation)
    : mode_(interpolation_mode(interpolation)) {
  conv1 = register_module("conv1", conv2d_relu(in + skip, out, 3, 1, 1, norm));
  attention1 = register_module("attention1", Attention(attention, in + skip));
  conv2 = register_module("conv2", conv2d_relu(out, out, 3, 1, 1, norm));
  attention2 = register_module("attention2", Attention(attention, out));
}

torch::Tensor UnetDecoderBlockImpl::forward(const torch::Tensor& x, int64_t height, int64_t width,
                                            const torch::Tensor* skip) {
  auto y = resize(x, height, width, mode_);
  if (skip) y = attention1->forward(torch::cat({y, *skip}, 1));
  return attention2->forward(conv2->forward(conv1->forward(y)));
}

nn::Sequential unet_center_block(int64_t channels, const NormSpec& norm) {
  return nn::Sequential(conv2d_relu(channels, channels, 3, 1, 1, norm), conv2d_relu(channels, channels, 3, 1, 1, norm));
}

}  // namespace smp::detail
