#include <smp/archs/unetplusplus.h>

#include <fmt/format.h>

#include "decoders/unet/decoder_block.h"
#include "models/options_json.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;

namespace {

// Block x_{depth}_{layer}: `layer` counts up from the deepest skip, `depth` down the nested path.
std::string block_key(size_t depth, size_t layer) { return fmt::format("x_{}_{}", depth, layer); }

class UnetPlusPlusDecoderImpl : public nn::Module {
 public:
  UnetPlusPlusDecoderImpl(const std::vector<int64_t>& encoder_channels, const std::vector<int64_t>& out,
                          bool add_center_block, const UnetPlusPlusOptions& o) {
    // From the deepest feature up; the input-resolution entry is not a skip.
    std::vector<int64_t> enc(encoder_channels.rbegin(), encoder_channels.rend() - 1);
    const int64_t head = enc.front();
    std::vector<int64_t> in{head};
    in.insert(in.end(), out.begin(), out.end() - 1);
    std::vector<int64_t> skip(enc.begin() + 1, enc.end());
    skip.push_back(0);
    depth_ = in.size() - 1;

    // smp builds the centre for vgg encoders but its forward never applies it; kept so the names match.
    if (add_center_block) register_module("center", detail::unet_center_block(head, o.decoder_use_norm()));

    std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> blocks;
    auto add = [&](size_t d, size_t l, int64_t in_ch, int64_t skip_ch, int64_t out_ch) {
      // Nested blocks after a 0-channel dummy feature have no channels: no layers, an empty map out.
      if (out_ch == 0) {
        empty_.insert(block_key(d, l));
        return;
      }
      blocks.emplace_back(block_key(d, l),
                          detail::UnetDecoderBlock(in_ch, skip_ch, out_ch, o.decoder_use_norm(),
                                                   o.decoder_attention_type(), o.decoder_interpolation())
                              .ptr());
    };
    for (size_t l = 0; l < depth_; ++l) {
      for (size_t d = 0; d <= l; ++d) {
        const auto n = static_cast<int64_t>(l + 1 - d);  // feature maps concatenated as the skip
        if (d == 0)
          add(d, l, in[l], skip[l] * n, out[l]);
        else
          add(d, l, skip[l - 1], skip[l] * n, skip[l]);
      }
    }
    add(0, depth_, in.back(), 0, out.back());
    blocks_ = register_module("blocks", nn::ModuleDict(blocks));
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    std::vector<torch::Tensor> f(features.rbegin(), features.rend() - 1);
    std::map<std::string, torch::Tensor> dense;
    for (size_t layer = 0; layer < depth_; ++layer) {
      for (size_t d = 0; d < depth_ - layer; ++d) {
        const size_t l = d + layer;
        // Block (d, l) takes (d, l - 1), or the encoder feature d on the first pass, and concatenates
        // every deeper output of its level with the encoder skip.
        std::vector<torch::Tensor> parts;
        for (size_t i = d + 1; i <= l; ++i) parts.push_back(dense.at(block_key(i, l)));
        parts.push_back(f[l + 1]);
        const auto skip = parts.size() == 1 ? parts.front() : torch::cat(parts, 1);
        dense[block_key(d, l)] = run(d, l, layer == 0 ? f[d] : dense.at(block_key(d, l - 1)), skip);
      }
    }
    return run(0, depth_, dense.at(block_key(0, depth_ - 1)), torch::Tensor());
  }

 private:
  // `skip` undefined: the final block, which has no encoder skip.
  torch::Tensor run(size_t d, size_t l, const torch::Tensor& x, const torch::Tensor& skip) {
    const auto key = block_key(d, l);
    const int64_t height = 2 * x.size(2), width = 2 * x.size(3);
    if (empty_.count(key)) return x.new_empty({x.size(0), 0, height, width});
    return blocks_[key]->as<detail::UnetDecoderBlock>()->forward(x, height, width, skip);
  }

  size_t depth_ = 0;
  nn::ModuleDict blocks_{nullptr};
  std::set<std::string> empty_;
};
TORCH_MODULE(UnetPlusPlusDecoder);

}  // namespace

UnetPlusPlusImpl::UnetPlusPlusImpl(const UnetPlusPlusOptions& o)
    : SegmentationModelImpl("UnetPlusPlus", detail::options_to_json(o)) {
  if (util::starts_with(o.encoder_name(), "mit_b"))
    throw std::invalid_argument(fmt::format("UnetPlusPlus is not support encoder_name={}", o.encoder_name()));
  set_encoder(create_encoder(detail::encoder_options(o)));
  const auto& channels = o.decoder_channels();
  if (static_cast<int64_t>(channels.size()) != o.encoder_depth())
    throw std::invalid_argument(fmt::format("Model depth is {}, but you provide `decoder_channels` for {} blocks.",
                                            o.encoder_depth(), channels.size()));
  // A timm encoder with fewer reductions may lower its depth (as for Unet): the first entries are used.
  const std::vector<int64_t> used(channels.begin(), channels.begin() + encoder().depth());
  // smp's decoder looks up a block "x_0_-1" for depth 1 and fails with a KeyError.
  if (used.size() < 2)
    throw std::invalid_argument(fmt::format("UnetPlusPlus needs encoder_depth of at least 2, got {}", used.size()));
  const bool vgg = util::starts_with(o.encoder_name(), "vgg");
  set_decoder(UnetPlusPlusDecoder(encoder().out_channels(), used, vgg, o));
  set_heads(segmentation_head(used.back(), o.classes(), 3, o.activation()), o.aux_params());
}

void register_unetplusplus() {
  detail::register_architecture_of<UnetPlusPlus, UnetPlusPlusOptions>("UnetPlusPlus", {{"decoder_use_batchnorm", "decoder_use_norm"}});
}

}  // namespace smp
