#include <smp/archs/linknet.h>

#include <fmt/format.h>

#include "models/options_json.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;

namespace {

// 1x1 conv to a quarter of the channels, x2 transposed conv, 1x1 conv to the output channels.
class LinknetBlockImpl : public nn::Module {
 public:
  LinknetBlockImpl(int64_t in, int64_t out, const NormSpec& norm) {
    const int64_t mid = in / 4;
    Block up(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(mid, mid, 4).stride(2).padding(1)));
    up->push_back(make_norm(norm, mid));
    up->push_back(nn::ReLU());
    block = register_module("block", Block(conv2d_relu(in, mid, 1, 0, 1, norm), up, conv2d_relu(mid, out, 1, 0, 1, norm)));
  }
  // `skip` undefined (the last block) or with 0 channels (a dummy feature): nothing is added.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip) {
    auto y = block->forward(x);
    return skip.defined() && skip.size(1) != 0 ? y + skip : y;
  }

 private:
  Block block{nullptr};
};
TORCH_MODULE(LinknetBlock);

class LinknetDecoderImpl : public nn::Module {
 public:
  LinknetDecoderImpl(const std::vector<int64_t>& encoder_channels, int64_t prefinal, int64_t n_blocks,
                     const NormSpec& norm) {
    // From the deepest feature up; 0-channel dummies take the width of the block before them.
    std::vector<int64_t> channels(encoder_channels.rbegin(), encoder_channels.rend() - 1);
    channels.push_back(prefinal);
    for (size_t i = 1; i + 1 < channels.size(); ++i)
      if (channels[i] == 0) channels[i] = channels[i - 1];
    blocks = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < n_blocks; ++i)
      blocks->push_back(LinknetBlock(channels[static_cast<size_t>(i)], channels[static_cast<size_t>(i) + 1], norm));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    std::vector<torch::Tensor> rev(features.rbegin(), features.rend() - 1);
    auto x = rev.front();
    for (size_t i = 0; i < blocks->size(); ++i) {
      const torch::Tensor skip = i + 1 < rev.size() ? rev[i + 1] : torch::Tensor();
      x = blocks[i]->as<LinknetBlock>()->forward(x, skip);
    }
    return x;
  }

 private:
  nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(LinknetDecoder);

constexpr int64_t kPrefinalChannels = 32;

}  // namespace

LinknetImpl::LinknetImpl(const LinknetOptions& o)
    : SegmentationModelImpl("Linknet", detail::options_to_json(o)) {
  if (util::starts_with(o.encoder_name(), "mit_b"))
    throw std::invalid_argument(fmt::format("Encoder `{}` is not supported for Linknet", o.encoder_name()));
  set_encoder(create_encoder(detail::encoder_options(o)));
  set_decoder(LinknetDecoder(encoder().out_channels(), kPrefinalChannels,
                                                       encoder().depth(), o.decoder_use_norm()));
  set_heads(segmentation_head(kPrefinalChannels, o.classes(), 1, o.activation()), o.aux_params());
}

void register_linknet() {
  detail::register_architecture_of<Linknet, LinknetOptions>("Linknet", {{"decoder_use_batchnorm", "decoder_use_norm"}});
}

}  // namespace smp
