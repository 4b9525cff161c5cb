#include <smp/models.h>

#include <fmt/format.h>

#include "decoders/unet/decoder_block.h"
#include "models/options_json.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;

namespace {

class UnetDecoderImpl : public nn::Module {
 public:
  UnetDecoderImpl(const std::vector<int64_t>& encoder_channels, const std::vector<int64_t>& decoder_channels,
                  bool add_center_block, const UnetOptions& o) {
    // Skips run from the deepest feature up; the input-resolution entry is not a skip.
    std::vector<int64_t> enc(encoder_channels.rbegin(), encoder_channels.rend() - 1);
    const int64_t head = enc.front();
    if (add_center_block) {
      center_ = register_module("center", detail::unet_center_block(head, o.decoder_use_norm()));
    }
    blocks_ = register_module("blocks", nn::ModuleList());
    for (size_t i = 0; i < decoder_channels.size(); ++i) {
      const int64_t in = i == 0 ? head : decoder_channels[i - 1];
      const int64_t skip = i + 1 < enc.size() ? enc[i + 1] : 0;
      blocks_->push_back(detail::UnetDecoderBlock(in, skip, decoder_channels[i], o.decoder_use_norm(),
                                                  o.decoder_attention_type(), o.decoder_interpolation()));
    }
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    // Targets: the spatial sizes of the features from the deepest one back up to the input.
    std::vector<torch::Tensor> skips(features.rbegin() + 1, features.rend() - 1);
    auto x = features.back();
    if (center_) x = center_->forward(x);
    for (size_t i = 0; i < blocks_->size(); ++i) {
      const auto& target = features[features.size() - 2 - i];
      const torch::Tensor skip = i < skips.size() ? skips[i] : torch::Tensor();
      x = blocks_[i]->as<detail::UnetDecoderBlock>()->forward(x, target.size(2), target.size(3), skip);
    }
    return x;
  }

 private:
  nn::Sequential center_{nullptr};
  nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(UnetDecoder);

}  // namespace

UnetImpl::UnetImpl(const UnetOptions& o) : SegmentationModelImpl("Unet", detail::options_to_json(o)) {
  requires_divisible_input_shape_ = false;
  set_encoder(create_encoder(detail::encoder_options(o)));
  const auto depth = encoder().depth();
  const auto& channels = o.decoder_channels();
  if (static_cast<int64_t>(channels.size()) < depth)
    throw std::invalid_argument(fmt::format("Model depth is {}, but you provide `decoder_channels` for {} blocks.",
                                            depth, channels.size()));
  // The decoder uses the first `depth` entries (the default has five; the depth may be lower).
  std::vector<int64_t> used(channels.begin(), channels.begin() + depth);
  const bool vgg = util::starts_with(o.encoder_name(), "vgg");
  set_decoder(UnetDecoder(encoder().out_channels(), used, vgg, o));
  set_heads(segmentation_head(used.back(), o.classes(), 3, o.activation()), o.aux_params());
}

void register_unet() {
  detail::register_architecture_of<Unet, UnetOptions>("Unet", {{"decoder_use_batchnorm", "decoder_use_norm"}});
}

}  // namespace smp
