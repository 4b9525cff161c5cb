#include <smp/archs/segformer.h>

#include <fmt/format.h>

#include "decoders/unet/decoder_block.h"
#include "models/options_json.h"

namespace smp {

namespace nn = torch::nn;

namespace {

// A linear layer over the channels of every position of an NCHW map.
class MLPImpl : public nn::Module {
 public:
  MLPImpl(int64_t in, int64_t out) { linear = register_module("linear", nn::Linear(in, out)); }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    return linear->forward(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape({n, -1, h, w});
  }

 private:
  nn::Linear linear{nullptr};
};
TORCH_MODULE(MLP);

class SegformerDecoderImpl : public nn::Module {
 public:
  SegformerDecoderImpl(std::vector<int64_t> encoder_channels, int64_t channels) {
    // Encoders with a 0-channel dummy at 1/2 (Mix Transformer and others starting at 1/4) drop it.
    if (encoder_channels[1] == 0) encoder_channels.erase(encoder_channels.begin() + 1);
    mlp_stage = register_module("mlp_stage", nn::ModuleList());
    // Deepest first; the input-resolution entry has no projection.
    for (auto it = encoder_channels.rbegin(); it + 1 != encoder_channels.rend(); ++it)
      mlp_stage->push_back(MLP(*it, channels));
    const auto fused = static_cast<int64_t>(mlp_stage->size()) * channels;
    // smp fixes batchnorm here (Segformer has no decoder_use_norm).
    fuse_stage = register_module("fuse_stage", conv2d_relu(fused, channels, 1, 0, 1, NormSpec("batchnorm")));
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    const int64_t height = features[0].size(2) / 4, width = features[0].size(3) / 4;
    // One projection per feature from the deepest up (the dropped dummy is never reached).
    std::vector<torch::Tensor> resized;
    for (size_t i = 0; i < mlp_stage->size(); ++i) {
      const auto& feature = features[features.size() - 1 - i];
      resized.push_back(resize(mlp_stage[i]->as<MLP>()->forward(feature), height, width, interpolation("bilinear")));
    }
    return fuse_stage->forward(torch::cat(resized, 1));
  }

 private:
  nn::ModuleList mlp_stage{nullptr};
  Block fuse_stage{nullptr};
};
TORCH_MODULE(SegformerDecoder);

}  // namespace

SegformerImpl::SegformerImpl(const SegformerOptions& o)
    : SegmentationModelImpl("Segformer", detail::options_to_json(o)) {
  set_encoder(create_encoder(detail::encoder_options(o)));
  if (o.encoder_depth() < 3)
    throw std::invalid_argument(
        fmt::format("Encoder depth for Segformer decoder cannot be less than 3, got {}.", o.encoder_depth()));
  set_decoder(SegformerDecoder(encoder().out_channels(), o.decoder_segmentation_channels()));
  set_heads(segmentation_head(o.decoder_segmentation_channels(), o.classes(), 1, o.activation(),
                              static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_segformer() { detail::register_architecture_of<Segformer, SegformerOptions>("Segformer"); }

}  // namespace smp
