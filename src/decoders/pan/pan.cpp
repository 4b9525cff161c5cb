#include <smp/archs/pan.h>

#include <fmt/format.h>

#include "models/options_json.h"
#include "util/log.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Conv (with bias) -> BatchNorm -> optional ReLU; smp registers the ReLU as "activation" before "bn".
class ConvBnReluImpl : public nn::Module {
 public:
  ConvBnReluImpl(int64_t in, int64_t out, int64_t kernel, int64_t padding, bool add_relu = true)
      : add_relu_(add_relu) {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(padding)));
    activation = register_module("activation", nn::ReLU(nn::ReLUOptions(true)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = bn->forward(conv->forward(x));
    return add_relu_ ? activation->forward(x) : x;
  }

 private:
  bool add_relu_;
  nn::Conv2d conv{nullptr};
  nn::ReLU activation{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBnRelu);

// Bilinear resize with align_corners (smp builds this block with its default "bilinear" mode).
torch::Tensor resize_aligned(const torch::Tensor& x, int64_t height, int64_t width) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{height, width})
                               .mode(torch::kBilinear)
                               .align_corners(true));
}

// Feature pyramid attention: a 7-5-3 conv pyramid on x/2, x/4, x/8 weights a 1x1 projection of x; a
// global-pooling branch is added on top.
class FPABlockImpl : public nn::Module {
 public:
  FPABlockImpl(int64_t in, int64_t out) {
    branch1 = register_module("branch1", nn::Sequential(nn::AdaptiveAvgPool2d(1), ConvBnRelu(in, out, 1, 0)));
    mid = register_module("mid", nn::Sequential(ConvBnRelu(in, out, 1, 0)));
    auto max_pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)); };
    down1 = register_module("down1", nn::Sequential(max_pool(), ConvBnRelu(in, 1, 7, 3)));
    down2 = register_module("down2", nn::Sequential(max_pool(), ConvBnRelu(1, 1, 5, 2)));
    down3 = register_module("down3", nn::Sequential(max_pool(), ConvBnRelu(1, 1, 3, 1), ConvBnRelu(1, 1, 3, 1)));
    conv2 = register_module("conv2", ConvBnRelu(1, 1, 5, 2));
    conv1 = register_module("conv1", ConvBnRelu(1, 1, 7, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t h = x.size(2), w = x.size(3);
    auto global = resize_aligned(branch1->forward(x), h, w);
    auto middle = mid->forward(x);
    auto x1 = down1->forward(x);
    auto x2 = down2->forward(x1);
    auto x3 = resize_aligned(down3->forward(x2), h / 4, w / 4);
    auto y = resize_aligned(conv2->forward(x2) + x3, h / 2, w / 2);
    y = resize_aligned(y + conv1->forward(x1), h, w);
    return y * middle + global;
  }

 private:
  nn::Sequential branch1{nullptr}, mid{nullptr}, down1{nullptr}, down2{nullptr}, down3{nullptr};
  ConvBnRelu conv2{nullptr}, conv1{nullptr};
};
TORCH_MODULE(FPABlock);

// Global attention upsample: the high-level map, upsampled, plus the 3x3-convolved low-level map
// weighted channel-wise by the high-level map's pooled attention.
class GAUBlockImpl : public nn::Module {
 public:
  GAUBlockImpl(int64_t in, int64_t out, const std::string& mode)
      : interpolation_(interpolation(mode, /*align_corners=*/mode == "bilinear")) {
    conv1 = register_module(
        "conv1", nn::Sequential(nn::AdaptiveAvgPool2d(1), ConvBnRelu(out, out, 1, 0, /*add_relu=*/false), nn::Sigmoid()));
    conv2 = register_module("conv2", ConvBnRelu(in, out, 3, 1));
  }
  torch::Tensor forward(const torch::Tensor& low, const torch::Tensor& high) {
    auto up = F::interpolate(high, F::InterpolateFuncOptions(interpolation_).size(
                                       std::vector<int64_t>{low.size(2), low.size(3)}));
    return up + conv2->forward(low) * conv1->forward(high);
  }

 private:
  F::InterpolateFuncOptions interpolation_;
  nn::Sequential conv1{nullptr};
  ConvBnRelu conv2{nullptr};
};
TORCH_MODULE(GAUBlock);

class PANDecoderImpl : public nn::Module {
 public:
  PANDecoderImpl(const std::vector<int64_t>& encoder_channels, int64_t depth, int64_t channels, const std::string& mode) {
    if (depth < 3)
      throw std::invalid_argument(fmt::format("Encoder depth for PAN decoder cannot be less than 3, got {}.", depth));
    // Features from 1/4 down; the input and the 1/2 feature are not used.
    std::vector<int64_t> used(encoder_channels.begin() + 2, encoder_channels.end());
    fpa = register_module("fpa", FPABlock(used.back(), channels));
    // From the deepest skip up: gau3 (1/16) only at depth 5, gau2 (1/8) from depth 4, gau1 (1/4) always.
    if (depth == 5) gau3 = register_module("gau3", GAUBlock(used[2], channels, mode));
    if (depth >= 4) gau2 = register_module("gau2", GAUBlock(used[1], channels, mode));
    gau1 = register_module("gau1", GAUBlock(used[0], channels, mode));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    auto out = fpa->forward(features.back());
    if (gau3) out = gau3->forward(features[4], out);
    if (gau2) out = gau2->forward(features[3], out);
    return gau1->forward(features[2], out);
  }

 private:
  FPABlock fpa{nullptr};
  GAUBlock gau3{nullptr}, gau2{nullptr}, gau1{nullptr};
};
TORCH_MODULE(PANDecoder);

}  // namespace

PANImpl::PANImpl(const PANOptions& o) : SegmentationModelImpl("PAN", detail::options_to_json(o)) {
  if (o.encoder_output_stride() != 16 && o.encoder_output_stride() != 32)
    throw std::invalid_argument(
        fmt::format("PAN support output stride 16 or 32, got {}", o.encoder_output_stride()));
  set_encoder(create_encoder(detail::encoder_options(o, o.encoder_output_stride())));
  set_decoder(PANDecoder(encoder().out_channels(), encoder().depth(), o.decoder_channels(),
                                                   o.decoder_interpolation()));
  set_heads(segmentation_head(o.decoder_channels(), o.classes(), 3, o.activation(), static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_pan() {
  detail::register_architecture_of<PAN, PANOptions>("PAN", {{"upscale_mode", "decoder_interpolation"}});
}

}  // namespace smp
