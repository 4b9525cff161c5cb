#include <smp/archs/deeplabv3.h>

#include <fmt/format.h>

#include "models/options_json.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// conv -> BatchNorm -> ReLU (children 0, 1, 2); the convs have no bias.
Block conv_bn_relu(nn::AnyModule conv, int64_t out) {
  Block block;
  block->push_back(std::move(conv));
  block->push_back(nn::BatchNorm2d(out));
  block->push_back(nn::ReLU());
  return block;
}

Block conv1x1_bn_relu(int64_t in, int64_t out) {
  return conv_bn_relu(nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false))), out);
}

// One dilated 3x3 branch of the pyramid, plain or depthwise-separable.
Block aspp_conv(int64_t in, int64_t out, int64_t rate, bool separable) {
  if (separable) return conv_bn_relu(nn::AnyModule(separable_conv2d(in, out, 3, rate, rate, false)), out);
  return conv_bn_relu(nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(rate).dilation(rate).bias(false))),
                      out);
}

// Image-level branch: global average, 1x1 conv-BN-ReLU, bilinear back to the input size.
class ASPPPoolingImpl : public nn::SequentialImpl {
 public:
  ASPPPoolingImpl(int64_t in, int64_t out) {
    push_back(nn::AdaptiveAvgPool2d(1));
    push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)));
    push_back(nn::BatchNorm2d(out));
    push_back(nn::ReLU());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return F::interpolate(nn::SequentialImpl::forward(x), F::InterpolateFuncOptions()
                                                               .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                                               .mode(torch::kBilinear)
                                                               .align_corners(false));
  }
};
TORCH_MODULE(ASPPPooling);

class ASPPImpl : public nn::Module {
 public:
  ASPPImpl(int64_t in, int64_t out, const std::vector<int64_t>& rates, bool separable, double dropout) {
    if (rates.size() != 3)
      throw std::invalid_argument(
          fmt::format("decoder_atrous_rates must hold 3 dilation rates, got {}", rates.size()));
    check_dropout("decoder_aspp_dropout", dropout);
    convs = register_module("convs", nn::ModuleList());
    convs->push_back(conv1x1_bn_relu(in, out));
    for (auto rate : rates) convs->push_back(aspp_conv(in, out, rate, separable));
    pooling_ = ASPPPooling(in, out);
    convs->push_back(pooling_);
    project = register_module("project", Block(nn::Conv2d(nn::Conv2dOptions(5 * out, out, 1).bias(false)),
                                               nn::BatchNorm2d(out), nn::ReLU(), nn::Dropout(dropout)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> branches;
    for (size_t i = 0; i + 1 < convs->size(); ++i) branches.push_back(convs[i]->as<Block>()->forward(x));
    branches.push_back(pooling_->forward(x));
    return project->forward(torch::cat(branches, 1));
  }

 private:
  nn::ModuleList convs{nullptr};
  ASPPPooling pooling_{nullptr};
  Block project{nullptr};
};
TORCH_MODULE(ASPP);

class DeepLabV3DecoderImpl : public nn::Module {
 public:
  DeepLabV3DecoderImpl(int64_t in, const DeepLabV3Options& o) {
    const int64_t out = o.decoder_channels();
    aspp = register_module("aspp", ASPP(in, out, o.decoder_atrous_rates(), o.decoder_aspp_separable(),
                                        o.decoder_aspp_dropout()));
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
    relu = register_module("relu", nn::ReLU());
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    return relu->forward(bn->forward(conv->forward(aspp->forward(features.back()))));
  }

 private:
  ASPP aspp{nullptr};
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::ReLU relu{nullptr};
};
TORCH_MODULE(DeepLabV3Decoder);

// ASPP on the deepest feature, upsampled to 1/4 and fused with a 48-channel projection of the 1/4 feature.
class DeepLabV3PlusDecoderImpl : public nn::Module {
 public:
  DeepLabV3PlusDecoderImpl(const std::vector<int64_t>& encoder_channels, int64_t depth, const DeepLabV3PlusOptions& o) {
    if (depth < 3)
      throw std::invalid_argument(
          fmt::format("Encoder depth for DeepLabV3Plus decoder cannot be less than 3, got {}.", depth));
    const int64_t out = o.decoder_channels();
    aspp_ = ASPP(encoder_channels.back(), out, o.decoder_atrous_rates(), o.decoder_aspp_separable(),
                 o.decoder_aspp_dropout());
    aspp = register_module("aspp", Block(aspp_, separable_conv2d(out, out, 3, 1, 1, false), nn::BatchNorm2d(out),
                                         nn::ReLU()));
    // The deepest feature is at 1/16 only with output stride 16 and depth > 3; else at 1/8.
    const double scale = o.encoder_output_stride() == 16 && depth > 3 ? 4.0 : 2.0;
    up = register_module("up", nn::Upsample(nn::UpsampleOptions()
                                                 .scale_factor(std::vector<double>{scale, scale})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(true)));
    constexpr int64_t kHighresChannels = 48;  // the paper's choice
    block1 = register_module("block1", conv1x1_bn_relu(encoder_channels[2], kHighresChannels));
    block2 = register_module(
        "block2", conv_bn_relu(nn::AnyModule(separable_conv2d(kHighresChannels + out, out, 3, 1, 1, false)), out));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    auto deep = up->forward(aspp->forward(features.back()));
    return block2->forward(torch::cat({deep, block1->forward(features[2])}, 1));
  }

 private:
  ASPP aspp_{nullptr};
  Block aspp{nullptr}, block1{nullptr}, block2{nullptr};
  nn::Upsample up{nullptr};
};
TORCH_MODULE(DeepLabV3PlusDecoder);

void check_output_stride(const std::string& arch, int64_t stride) {
  if (stride != 8 && stride != 16)
    throw std::invalid_argument(fmt::format("{} support output stride 8 or 16, got {}.", arch, stride));
}

}  // namespace

DeepLabV3Impl::DeepLabV3Impl(const DeepLabV3Options& o)
    : SegmentationModelImpl("DeepLabV3", detail::options_to_json(o)) {
  check_output_stride("DeeplabV3", o.encoder_output_stride());
  set_encoder(create_encoder(detail::encoder_options(o, o.encoder_output_stride())));
  const int64_t depth = encoder().depth();
  const int64_t scale = o.upsampling() ? *o.upsampling() : depth <= 3 ? int64_t{1} << depth : o.encoder_output_stride();
  set_decoder(DeepLabV3Decoder(encoder().out_channels().back(), o));
  set_heads(segmentation_head(o.decoder_channels(), o.classes(), 1, o.activation(), static_cast<double>(scale)),
            o.aux_params());
  // Older smp versions kept the decoder as a Sequential: its parts were numbered, not named.
  legacy_keys_ = [](const std::string& key) {
    static const std::vector<std::pair<std::string, std::string>> parts = {
        {"decoder.0.", "decoder.aspp."}, {"decoder.1.", "decoder.conv."}, {"decoder.2.", "decoder.bn."}};
    for (const auto& [old_prefix, new_prefix] : parts)
      if (key.rfind(old_prefix, 0) == 0) return new_prefix + key.substr(old_prefix.size());
    return key;
  };
}

DeepLabV3PlusImpl::DeepLabV3PlusImpl(const DeepLabV3PlusOptions& o)
    : SegmentationModelImpl("DeepLabV3Plus", detail::options_to_json(o)) {
  check_output_stride("DeeplabV3Plus", o.encoder_output_stride());
  set_encoder(create_encoder(detail::encoder_options(o, o.encoder_output_stride())));
  set_decoder(DeepLabV3PlusDecoder(encoder().out_channels(), encoder().depth(), o));
  set_heads(segmentation_head(o.decoder_channels(), o.classes(), 1, o.activation(), static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_deeplabv3() {
  detail::register_architecture_of<DeepLabV3, DeepLabV3Options>("DeepLabV3");
  detail::register_architecture_of<DeepLabV3Plus, DeepLabV3PlusOptions>("DeepLabV3Plus");
}

}  // namespace smp
