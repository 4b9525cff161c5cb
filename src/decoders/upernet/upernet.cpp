#include <smp/archs/upernet.h>

#include <fmt/format.h>

#include "decoders/unet/decoder_block.h"
#include "models/options_json.h"
#include "timm/layers/mlp.h"

namespace smp {

namespace nn = torch::nn;

namespace {

torch::Tensor bilinear(const torch::Tensor& x, int64_t height, int64_t width) {
  return resize(x, height, width, interpolation("bilinear"));
}

// Average-pools the deepest feature to 1, 2, 3 and 6 cells, projects each, and fuses them with it.
class UperNetPSPModuleImpl : public nn::Module {
 public:
  UperNetPSPModuleImpl(int64_t in, int64_t out, const NormSpec& norm) {
    blocks = register_module("blocks", nn::ModuleList());
    for (int64_t size : {1, 2, 3, 6})
      blocks->push_back(nn::Sequential(nn::AdaptiveAvgPool2d(size), conv2d_relu(in, out, 1, 0, 1, norm)));
    // smp fixes batchnorm here whatever decoder_use_norm says.
    out_conv = register_module("out_conv", conv2d_relu(in + 4 * out, out, 3, 1, 1, NormSpec("batchnorm")));
  }

  torch::Tensor forward(const torch::Tensor& feature) {
    std::vector<torch::Tensor> pyramid{feature};
    for (const auto& block : *blocks)
      pyramid.push_back(bilinear(block->as<nn::Sequential>()->forward(feature), feature.size(2), feature.size(3)));
    return out_conv->forward(torch::cat(pyramid, 1));
  }

 private:
  nn::ModuleList blocks{nullptr};
  Block out_conv{nullptr};
};
TORCH_MODULE(UperNetPSPModule);

// 1x1 projection of an encoder feature plus the coarser FPN state upsampled to its size.
class FPNLateralBlockImpl : public nn::Module {
 public:
  FPNLateralBlockImpl(int64_t lateral, int64_t out, const NormSpec& norm) {
    conv_norm_relu = register_module("conv_norm_relu", conv2d_relu(lateral, out, 1, 0, 1, norm));
  }
  torch::Tensor forward(const torch::Tensor& state, const torch::Tensor& lateral) {
    auto y = conv_norm_relu->forward(lateral);
    return bilinear(state, y.size(2), y.size(3)) + y;
  }

 private:
  Block conv_norm_relu{nullptr};
};
TORCH_MODULE(FPNLateralBlock);

class UPerNetDecoderImpl : public nn::Module {
 public:
  UPerNetDecoderImpl(const std::vector<int64_t>& encoder_channels, int64_t channels, const NormSpec& norm) {
    // Only the features at 1/4 and below take part.
    const std::vector<int64_t> used(encoder_channels.begin() + 2, encoder_channels.end());
    feature_norms = register_module("feature_norms", nn::ModuleList());
    for (int64_t c : used) feature_norms->push_back(timm::layers::LayerNorm2d(c, 1e-6));
    psp = register_module("psp", UperNetPSPModule(used.back(), channels, norm));
    fpn_lateral_blocks = register_module("fpn_lateral_blocks", nn::ModuleList());
    fpn_conv_blocks = register_module("fpn_conv_blocks", nn::ModuleList());
    // Laterals from 1/16 (or the level above the deepest) up to 1/4.
    for (auto it = used.rbegin() + 1; it != used.rend(); ++it) {
      fpn_lateral_blocks->push_back(FPNLateralBlock(*it, channels, norm));
      fpn_conv_blocks->push_back(conv2d_relu(channels, channels, 3, 1, 1, norm));
    }
    const auto fused = static_cast<int64_t>(fpn_conv_blocks->size() + 1) * channels;
    fusion_block = register_module("fusion_block", conv2d_relu(fused, channels, 3, 1, 1, norm));
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& all) {
    std::vector<torch::Tensor> features(all.begin() + 2, all.end());
    for (size_t i = 0; i < feature_norms->size(); ++i)
      features[i] = feature_norms[i]->as<timm::layers::LayerNorm2d>()->forward(features[i]);
    std::vector<torch::Tensor> fpn{psp->forward(features.back())};
    for (size_t i = 0; i < fpn_lateral_blocks->size(); ++i) {
      const auto& lateral = features[features.size() - 2 - i];
      fpn.push_back(fpn_lateral_blocks[i]->as<FPNLateralBlock>()->forward(fpn.back(), lateral));
    }
    for (size_t i = 0; i < fpn_conv_blocks->size(); ++i) fpn[i + 1] = fpn_conv_blocks[i]->as<Block>()->forward(fpn[i + 1]);
    // Everything at the 1/4 map's size, finest first.
    const int64_t height = fpn.back().size(2), width = fpn.back().size(3);
    std::vector<torch::Tensor> resized;
    for (auto it = fpn.rbegin(); it != fpn.rend(); ++it) resized.push_back(bilinear(*it, height, width));
    return fusion_block->forward(torch::cat(resized, 1));
  }

 private:
  nn::ModuleList feature_norms{nullptr}, fpn_lateral_blocks{nullptr}, fpn_conv_blocks{nullptr};
  UperNetPSPModule psp{nullptr};
  Block fusion_block{nullptr};
};
TORCH_MODULE(UPerNetDecoder);

}  // namespace

UPerNetImpl::UPerNetImpl(const UPerNetOptions& o)
    : SegmentationModelImpl("UPerNet", detail::options_to_json(o)) {
  set_encoder(create_encoder(detail::encoder_options(o)));
  if (o.encoder_depth() < 3)
    throw std::invalid_argument(
        fmt::format("Encoder depth for UPerNet decoder cannot be less than 3, got {}.", o.encoder_depth()));
  set_decoder(UPerNetDecoder(encoder().out_channels(), o.decoder_channels(),
                                                       o.decoder_use_norm()));
  set_heads(segmentation_head(o.decoder_channels(), o.classes(), 1, o.activation(), static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_upernet() { detail::register_architecture_of<UPerNet, UPerNetOptions>("UPerNet"); }

}  // namespace smp
