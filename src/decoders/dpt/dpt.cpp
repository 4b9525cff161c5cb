#include <smp/archs/dpt.h>

#include <fmt/format.h>

#include <smp/vit_encoder.h>
#include "models/options_json.h"
#include "util/log.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

torch::Tensor upsample_bilinear_x2(const torch::Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kBilinear)
                               .align_corners(true));
}

// How a feature map takes in its prefix tokens: "cat" concatenates the first one to every position
// and projects back (Linear + GELU), "add" adds their mean, "ignore" drops them.
class ReadoutImpl : public nn::Module {
 public:
  ReadoutImpl(std::string mode, int64_t embed_dim, bool has_prefix_tokens) : mode_(std::move(mode)) {
    if (mode_ == "cat")
      project = register_module(
          "project", nn::Sequential(nn::Linear(has_prefix_tokens ? 2 * embed_dim : embed_dim, embed_dim), nn::GELU()));
  }
  // `prefix` undefined: an encoder without prefix tokens.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& prefix) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    if (mode_ == "add") return prefix.defined() ? x + prefix.mean(1).view({b, c, 1, 1}) : x;
    if (mode_ == "ignore") return x;
    auto tokens = x.view({b, c, -1}).transpose(1, 2).contiguous();
    if (prefix.defined()) tokens = torch::cat({tokens, prefix.slice(1, 0, 1).expand_as(tokens)}, 2);
    return project->forward(tokens).transpose(1, 2).reshape({b, -1, h, w});
  }

 private:
  std::string mode_;
  nn::Sequential project{nullptr};
};
TORCH_MODULE(Readout);

// 1x1 projection, resampling by `factor` (transposed conv up, strided conv down), 3x3 to the fusion width.
class ReassembleBlockImpl : public nn::Module {
 public:
  ReassembleBlockImpl(int64_t in, int64_t mid, int64_t out, double factor) {
    project_to_out_channel = register_module("project_to_out_channel", nn::Conv2d(nn::Conv2dOptions(in, mid, 1)));
    if (factor > 1.0) {
      const auto k = static_cast<int64_t>(factor);
      upsample = register_module("upsample", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(mid, mid, k).stride(k)));
    } else if (factor == 1.0) {
      upsample = register_module("upsample", nn::Identity());
    } else {
      upsample = register_module(
          "upsample", nn::Conv2d(nn::Conv2dOptions(mid, mid, 3).stride(static_cast<int64_t>(1.0 / factor)).padding(1)));
    }
    project_to_feature_dim = register_module("project_to_feature_dim",
                                             nn::Conv2d(nn::Conv2dOptions(mid, out, 3).padding(1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return project_to_feature_dim(upsample.forward(project_to_out_channel(x)));
  }

 private:
  nn::Conv2d project_to_out_channel{nullptr}, project_to_feature_dim{nullptr};
  nn::AnyModule upsample;
};
TORCH_MODULE(ReassembleBlock);

// x + (ReLU -> conv -> BN) twice.
class ResidualConvBlockImpl : public nn::Module {
 public:
  explicit ResidualConvBlockImpl(int64_t dim) {
    auto conv = [dim] { return nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).bias(false)); };
    conv_1 = register_module("conv_1", conv());
    batch_norm_1 = register_module("batch_norm_1", nn::BatchNorm2d(dim));
    conv_2 = register_module("conv_2", conv());
    batch_norm_2 = register_module("batch_norm_2", nn::BatchNorm2d(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = batch_norm_1(conv_1(torch::relu(x)));
    return batch_norm_2(conv_2(torch::relu(y))) + x;
  }

 private:
  nn::Conv2d conv_1{nullptr}, conv_2{nullptr};
  nn::BatchNorm2d batch_norm_1{nullptr}, batch_norm_2{nullptr};
};
TORCH_MODULE(ResidualConvBlock);

class FusionBlockImpl : public nn::Module {
 public:
  explicit FusionBlockImpl(int64_t dim) {
    residual_conv_block1 = register_module("residual_conv_block1", ResidualConvBlock(dim));
    residual_conv_block2 = register_module("residual_conv_block2", ResidualConvBlock(dim));
    project = register_module("project", nn::Conv2d(nn::Conv2dOptions(dim, dim, 1)));
  }
  // `previous` undefined: the deepest block, with no fused map before it.
  torch::Tensor forward(const torch::Tensor& feature, const torch::Tensor& previous) {
    auto x = residual_conv_block1(feature);
    if (previous.defined()) x = x + previous;
    return project(upsample_bilinear_x2(residual_conv_block2(x)));
  }

 private:
  ResidualConvBlock residual_conv_block1{nullptr}, residual_conv_block2{nullptr};
  nn::Conv2d project{nullptr};
};
TORCH_MODULE(FusionBlock);

class DPTDecoderImpl : public nn::Module {
 public:
  DPTDecoderImpl(const std::vector<int64_t>& channels, const std::vector<int64_t>& strides, bool has_prefix_tokens,
                 const DPTOptions& o) {
    const auto& mid = o.decoder_intermediate_channels();
    if (channels.size() != strides.size() || channels.size() != mid.size())
      throw std::invalid_argument(fmt::format(
          "encoder_out_channels, encoder_output_strides and intermediate_channels must have the same length (the "
          "encoder gives {} features, decoder_intermediate_channels has {} entries): give one "
          "decoder_intermediate_channels entry per encoder_depth",
          channels.size(), mid.size()));
    projection_blocks = register_module("projection_blocks", nn::ModuleList());
    reassemble_blocks = register_module("reassemble_blocks", nn::ModuleList());
    fusion_blocks = register_module("fusion_blocks", nn::ModuleList());
    for (size_t i = 0; i < channels.size(); ++i)
      projection_blocks->push_back(Readout(o.decoder_readout(), channels[i], has_prefix_tokens));
    // Resampled to reductions 4, 8, 16, ... before fusing, by a whole factor up or down. Other strides
    // (patch 14: 3.5x, 1.75x, ...) would give maps that cannot be fused; smp fails on them in forward.
    for (size_t i = 0; i < channels.size(); ++i) {
      const auto target = int64_t{1} << (i + 2);
      if (strides[i] % target != 0 && target % strides[i] != 0)
        throw std::invalid_argument(fmt::format(
            "DPT resamples feature {} from reduction {} to {}, which needs a whole up- or downsampling factor; "
            "the encoder's patch size gives reduction {}: use an encoder with a power-of-two patch size (8, 16, 32), "
            "e.g. tu-vit_small_patch16_224",
            i, strides[i], target, strides[i]));
      const double factor = static_cast<double>(strides[i]) / static_cast<double>(target);
      reassemble_blocks->push_back(ReassembleBlock(channels[i], mid[i], o.decoder_fusion_channels(), factor));
    }
    for (size_t i = 0; i < channels.size(); ++i) fusion_blocks->push_back(FusionBlock(o.decoder_fusion_channels()));
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features, const std::vector<torch::Tensor>& prefix_tokens) {
    std::vector<torch::Tensor> reassembled;
    for (size_t i = 0; i < features.size(); ++i) {
      const torch::Tensor prefix = prefix_tokens.empty() ? torch::Tensor() : prefix_tokens[i];
      auto x = projection_blocks[i]->as<Readout>()->forward(features[i], prefix);
      reassembled.push_back(reassemble_blocks[i]->as<ReassembleBlock>()->forward(x));
    }
    torch::Tensor fused;
    for (size_t i = 0; i < reassembled.size(); ++i)
      fused = fusion_blocks[i]->as<FusionBlock>()->forward(reassembled[reassembled.size() - 1 - i], fused);
    return fused;
  }

 private:
  nn::ModuleList projection_blocks{nullptr}, reassemble_blocks{nullptr}, fusion_blocks{nullptr};
};
TORCH_MODULE(DPTDecoder);

// conv3x3 -> BN -> ReLU -> dropout -> conv1x1, then x2 bilinear upsampling and the activation.
class DPTSegmentationHeadImpl : public nn::Module {
 public:
  DPTSegmentationHeadImpl(int64_t in, int64_t classes, const std::string& activation)
      : activation_(make_activation(activation)) {
    head = register_module(
        "head", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, in, 3).padding(1).bias(false)), nn::BatchNorm2d(in),
                               nn::ReLU(nn::ReLUOptions(true)), nn::Dropout(0.1), nn::Conv2d(nn::Conv2dOptions(in, classes, 1))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return activation_(upsample_bilinear_x2(head->forward(x))); }

 private:
  nn::Sequential head{nullptr};
  nn::Functional activation_;
};
TORCH_MODULE(DPTSegmentationHead);

const std::vector<std::string> kReadouts = {"ignore", "add", "cat"};

}  // namespace

DPTImpl::DPTImpl(const DPTOptions& o) : SegmentationModelImpl("DPT", detail::options_to_json(o)) {
  if (!util::starts_with(o.encoder_name(), "tu-"))
    throw std::invalid_argument(fmt::format(
        "Only Timm encoders are supported for DPT. Encoder name must start with 'tu-', got {}", o.encoder_name()));
  if (std::find(kReadouts.begin(), kReadouts.end(), o.decoder_readout()) == kReadouts.end())
    throw std::invalid_argument(fmt::format(
        "Invalid decoder readout mode. Must be one of: 'ignore', 'add', 'cat'. Got: {}", o.decoder_readout()));
  auto encoder = TimmViTEncoder(ViTEncoderOptions()
                                    .name(o.encoder_name().substr(3))
                                    .in_channels(o.in_channels())
                                    .depth(o.encoder_depth())
                                    .output_indices(o.encoder_output_indices())
                                    .weights(o.encoder_weights())
                                    .drop_path_rate(o.drop_path_rate())
                                    .drop_rate(o.drop_rate()));
  if (!encoder->has_prefix_tokens() && o.decoder_readout() != "ignore")
    log::logger().warn(fmt::format("Encoder does not have prefix tokens (e.g. cls_token), but `decoder_readout` is set to '{}'. "
                          "It's recommended to set `decoder_readout='ignore'` when using a encoder without prefix tokens.",
                          o.decoder_readout()));
  set_encoder(encoder.ptr());
  const auto channels = encoder->out_channels();
  decoder_ = register_module("decoder", DPTDecoder(std::vector<int64_t>(channels.begin() + 1, channels.end()),
                                                   encoder->output_strides(), encoder->has_prefix_tokens(), o));
  set_heads(DPTSegmentationHead(o.decoder_fusion_channels(), o.classes(), o.activation()), o.aux_params());
}

SegmentationOutput DPTImpl::forward_all(const torch::Tensor& x) {
  check_input_shape(x);
  auto& vit = static_cast<TimmViTEncoderImpl&>(encoder());
  std::vector<torch::Tensor> prefix_tokens;
  auto features = vit.forward(x, prefix_tokens);
  auto decoded = std::static_pointer_cast<DPTDecoderImpl>(decoder_)->forward(features, prefix_tokens);
  return apply_heads(decoded, features.back());
}

void register_dpt() { detail::register_architecture_of<DPT, DPTOptions>("DPT"); }

}  // namespace smp
