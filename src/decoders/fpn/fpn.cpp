#include <smp/archs/fpn.h>

#include <fmt/format.h>

#include "models/options_json.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

constexpr int64_t kGroups = 32;

// 3x3 conv (no bias) -> GroupNorm(32) -> ReLU, then optionally x2 bilinear upsampling.
class Conv3x3GNReLUImpl : public nn::Module {
 public:
  Conv3x3GNReLUImpl(int64_t in, int64_t out, bool upsample) : upsample_(upsample) {
    block = register_module("block", Block(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)),
                                           nn::GroupNorm(nn::GroupNormOptions(kGroups, out)),
                                           nn::ReLU(nn::ReLUOptions(true))));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = block->forward(std::move(x));
    if (!upsample_) return x;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .scale_factor(std::vector<double>{2.0, 2.0})
                                 .mode(torch::kBilinear)
                                 .align_corners(true));
  }

 private:
  bool upsample_;
  Block block{nullptr};
};
TORCH_MODULE(Conv3x3GNReLU);

// Top-down step: the coarser level upsampled x2 plus a 1x1 projection of the skip feature.
class FPNBlockImpl : public nn::Module {
 public:
  FPNBlockImpl(int64_t pyramid, int64_t skip, const std::string& mode)
      : interpolation_(interpolation(mode).scale_factor(std::vector<double>{2.0, 2.0})) {
    skip_conv = register_module("skip_conv", nn::Conv2d(nn::Conv2dOptions(skip, pyramid, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip) {
    return F::interpolate(x, interpolation_) + skip_conv->forward(skip);
  }

 private:
  F::InterpolateFuncOptions interpolation_;
  nn::Conv2d skip_conv{nullptr};
};
TORCH_MODULE(FPNBlock);

// One pyramid level to 1/4 resolution: n_upsamples blocks that upsample (one plain block for 0).
class SegmentationBlockImpl : public nn::Module {
 public:
  SegmentationBlockImpl(int64_t in, int64_t out, int64_t n_upsamples) {
    block = register_module("block", Block(Conv3x3GNReLU(in, out, n_upsamples > 0)));
    for (int64_t i = 1; i < n_upsamples; ++i) block->push_back(Conv3x3GNReLU(out, out, true));
  }
  torch::Tensor forward(torch::Tensor x) { return block->forward(std::move(x)); }

 private:
  Block block{nullptr};
};
TORCH_MODULE(SegmentationBlock);

class FPNDecoderImpl : public nn::Module {
 public:
  FPNDecoderImpl(const std::vector<int64_t>& encoder_channels, int64_t depth, const FPNOptions& o)
      : cat_(o.decoder_merge_policy() == "cat") {
    if (depth < 3)
      throw std::invalid_argument(fmt::format("Encoder depth for FPN decoder cannot be less than 3, got {}.", depth));
    if (o.decoder_merge_policy() != "add" && o.decoder_merge_policy() != "cat")
      throw std::invalid_argument(
          fmt::format("`merge_policy` must be one of: ['add', 'cat'], got {}", o.decoder_merge_policy()));
    const int64_t pyramid = o.decoder_pyramid_channels(), segmentation = o.decoder_segmentation_channels();
    if (segmentation % kGroups != 0)
      throw std::invalid_argument(fmt::format(
          "decoder_segmentation_channels must be divisible by {} (GroupNorm's groups), got {}", kGroups, segmentation));
    check_dropout("decoder_dropout", o.decoder_dropout());
    // The last four features from the deepest one up.
    std::vector<int64_t> ch(encoder_channels.rbegin(), encoder_channels.rbegin() + 4);
    p5 = register_module("p5", nn::Conv2d(nn::Conv2dOptions(ch[0], pyramid, 1)));
    p4 = register_module("p4", FPNBlock(pyramid, ch[1], o.decoder_interpolation()));
    p3 = register_module("p3", FPNBlock(pyramid, ch[2], o.decoder_interpolation()));
    p2 = register_module("p2", FPNBlock(pyramid, ch[3], o.decoder_interpolation()));
    seg_blocks = register_module("seg_blocks", nn::ModuleList());
    for (int64_t n_upsamples : {3, 2, 1, 0}) seg_blocks->push_back(SegmentationBlock(pyramid, segmentation, n_upsamples));
    dropout = register_module("dropout", nn::Dropout2d(nn::Dropout2dOptions(o.decoder_dropout()).inplace(true)));
    out_channels = cat_ ? segmentation * 4 : segmentation;
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    const size_t n = features.size();
    std::vector<torch::Tensor> pyramid(4);
    pyramid[0] = p5->forward(features[n - 1]);
    pyramid[1] = p4->forward(pyramid[0], features[n - 2]);
    pyramid[2] = p3->forward(pyramid[1], features[n - 3]);
    pyramid[3] = p2->forward(pyramid[2], features[n - 4]);
    for (size_t i = 0; i < 4; ++i) pyramid[i] = seg_blocks[i]->as<SegmentationBlock>()->forward(pyramid[i]);
    auto x = cat_ ? torch::cat(pyramid, 1) : torch::stack(pyramid).sum(0);
    return dropout->forward(x);
  }

  int64_t out_channels = 0;

 private:
  bool cat_;
  nn::Conv2d p5{nullptr};
  FPNBlock p4{nullptr}, p3{nullptr}, p2{nullptr};
  nn::ModuleList seg_blocks{nullptr};
  nn::Dropout2d dropout{nullptr};
};
TORCH_MODULE(FPNDecoder);

}  // namespace

FPNImpl::FPNImpl(const FPNOptions& o) : SegmentationModelImpl("FPN", detail::options_to_json(o)) {
  if (util::starts_with(o.encoder_name(), "mit_b") && o.encoder_depth() != 5)
    throw std::invalid_argument(fmt::format("Encoder {} support only encoder_depth=5", o.encoder_name()));
  set_encoder(create_encoder(detail::encoder_options(o)));
  auto decoder = FPNDecoder(encoder().out_channels(), encoder().depth(), o);
  set_decoder(decoder);
  set_heads(segmentation_head(decoder->out_channels, o.classes(), 1, o.activation(), static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_fpn() {
  detail::register_architecture_of<FPN, FPNOptions>("FPN");
}

}  // namespace smp
