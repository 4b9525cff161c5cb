#include <smp/archs/manet.h>

#include <fmt/format.h>

#include "decoders/unet/decoder_block.h"
#include "models/options_json.h"

namespace smp {

namespace nn = torch::nn;

namespace {

// Position-wise attention: a softmax over all (query, key) position pairs of the map at once.
class PABBlockImpl : public nn::Module {
 public:
  PABBlockImpl(int64_t in_channels, int64_t pab_channels) : in_channels_(in_channels) {
    top_conv = register_module("top_conv", nn::Conv2d(nn::Conv2dOptions(in_channels, pab_channels, 1)));
    center_conv = register_module("center_conv", nn::Conv2d(nn::Conv2dOptions(in_channels, pab_channels, 1)));
    bottom_conv =
        register_module("bottom_conv", nn::Conv2d(nn::Conv2dOptions(in_channels, in_channels, 3).padding(1)));
    out_conv = register_module("out_conv", nn::Conv2d(nn::Conv2dOptions(in_channels, in_channels, 3).padding(1)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    auto top = top_conv->forward(x).flatten(2);
    auto center = center_conv->forward(x).flatten(2).transpose(1, 2);
    auto bottom = bottom_conv->forward(x).flatten(2).transpose(1, 2);
    auto map = torch::softmax(torch::matmul(center, top).view({n, -1}), 1).view({n, h * w, h * w});
    // smp reshapes the [N, HW, C] product straight to [N, C, H, W] (no transpose); kept for identical outputs.
    auto attended = torch::matmul(map, bottom).reshape({n, in_channels_, h, w});
    return out_conv->forward(x + attended);
  }

 private:
  int64_t in_channels_;
  nn::Conv2d top_conv{nullptr}, center_conv{nullptr}, bottom_conv{nullptr}, out_conv{nullptr};
};
TORCH_MODULE(PABBlock);

nn::Sequential squeeze_excitation(int64_t channels, int64_t reduced) {
  return nn::Sequential(nn::AdaptiveAvgPool2d(1), nn::Conv2d(nn::Conv2dOptions(channels, reduced, 1)),
                        nn::ReLU(nn::ReLUOptions(true)), nn::Conv2d(nn::Conv2dOptions(reduced, channels, 1)),
                        nn::Sigmoid());
}

// Multi-scale fusion attention: the deeper map is brought to the skip's width, upsampled, and
// weighted by the sum of both paths' channel attentions before the concatenation.
class MFABBlockImpl : public nn::Module {
 public:
  MFABBlockImpl(int64_t in, int64_t skip, int64_t out, const NormSpec& norm, const std::string& interpolation,
                int64_t reduction = 16)
      : mode_(smp::interpolation(interpolation)) {
    hl_conv = register_module("hl_conv", nn::Sequential(conv2d_relu(in, in, 3, 1, 1, norm),
                                                        conv2d_relu(in, skip, 1, 0, 1, norm)));
    const int64_t reduced = std::max<int64_t>(1, skip / reduction);
    SE_ll = register_module("SE_ll", squeeze_excitation(skip, reduced));
    SE_hl = register_module("SE_hl", squeeze_excitation(skip, reduced));
    conv1 = register_module("conv1", conv2d_relu(skip + skip, out, 3, 1, 1, norm));
    conv2 = register_module("conv2", conv2d_relu(out, out, 3, 1, 1, norm));
  }

  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& skip) {
    auto x = hl_conv->forward(input);
    x = resize(x, 2 * x.size(2), 2 * x.size(3), mode_);
    auto attention = SE_hl->forward(x) + SE_ll->forward(skip);
    x = torch::cat({x * attention, skip}, 1);
    return conv2->forward(conv1->forward(x));
  }

 private:
  torch::nn::functional::InterpolateFuncOptions mode_;
  nn::Sequential hl_conv{nullptr}, SE_ll{nullptr}, SE_hl{nullptr};
  Block conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(MFABBlock);

class MAnetDecoderImpl : public nn::Module {
 public:
  MAnetDecoderImpl(const std::vector<int64_t>& encoder_channels, const std::vector<int64_t>& out,
                   const MAnetOptions& o) {
    // From the deepest feature up; the input-resolution entry is not a skip.
    std::vector<int64_t> enc(encoder_channels.rbegin(), encoder_channels.rend() - 1);
    const int64_t head = enc.front();
    center = register_module("center", PABBlock(head, o.decoder_pab_channels()));
    blocks = register_module("blocks", nn::ModuleList());
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t in = i == 0 ? head : out[i - 1];
      const int64_t skip = i + 1 < enc.size() ? enc[i + 1] : 0;
      // Levels without skip channels (the last, or a 0-channel dummy) take a plain Unet block.
      if (skip > 0) {
        blocks->push_back(MFABBlock(in, skip, out[i], o.decoder_use_norm(), o.decoder_interpolation()));
      } else {
        blocks->push_back(detail::UnetDecoderBlock(in, 0, out[i], o.decoder_use_norm(), "", o.decoder_interpolation()));
      }
    }
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    std::vector<torch::Tensor> skips(features.rbegin() + 1, features.rend() - 1);
    auto x = center->forward(features.back());
    for (size_t i = 0; i < blocks->size(); ++i) {
      const torch::Tensor skip = i < skips.size() ? skips[i] : torch::Tensor();
      if (auto mfab = blocks[i]->as<MFABBlock>())
        x = mfab->forward(x, skip);
      else
        x = blocks[i]->as<detail::UnetDecoderBlock>()->forward(x, 2 * x.size(2), 2 * x.size(3), skip);
    }
    return x;
  }

 private:
  PABBlock center{nullptr};
  nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(MAnetDecoder);

}  // namespace

MAnetImpl::MAnetImpl(const MAnetOptions& o) : SegmentationModelImpl("MAnet", detail::options_to_json(o)) {
  set_encoder(create_encoder(detail::encoder_options(o)));
  const auto& channels = o.decoder_channels();
  if (static_cast<int64_t>(channels.size()) != o.encoder_depth())
    throw std::invalid_argument(fmt::format("Model depth is {}, but you provide `decoder_channels` for {} blocks.",
                                            o.encoder_depth(), channels.size()));
  // A timm encoder with fewer reductions may lower its depth (as for Unet): the first entries are used.
  const std::vector<int64_t> used(channels.begin(), channels.begin() + encoder().depth());
  set_decoder(MAnetDecoder(encoder().out_channels(), used, o));
  set_heads(segmentation_head(used.back(), o.classes(), 3, o.activation()), o.aux_params());
}

void register_manet() { detail::register_architecture_of<MAnet, MAnetOptions>("MAnet", {{"decoder_use_batchnorm", "decoder_use_norm"}}); }

}  // namespace smp
