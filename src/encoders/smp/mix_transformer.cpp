// smp's Mix Transformer encoders (SegFormer's mit_b0 .. mit_b5) with smp's parameter names.
#include <cmath>

#include "encoders/smp/common.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/sr_attention.h"

namespace smp::smp_encoders::mix_transformer {

namespace nn = torch::nn;
namespace tl = timm::layers;

namespace {

struct MitSpec {
  std::vector<int64_t> embed_dims, depths;
};
const std::vector<int64_t> kMitHeads = {1, 2, 5, 8};
const std::vector<int64_t> kMitSrRatios = {8, 4, 2, 1};
constexpr double kMitEps = 1e-6;
constexpr int64_t kMitMlpRatio = 4;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(kMitEps)); }

// LayerNorm over the channels of an NCHW map.
torch::Tensor norm_2d(nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto t = norm->forward(x.view({n, c, -1}).transpose(1, 2));
  return t.transpose(1, 2).reshape({n, c, h, w});
}

// smp's MiT applies its drop_rate after the attention's projection and, in the MLP, after the
// activation and after fc2.
class MitMlpImpl : public nn::Module {
 public:
  MitMlpImpl(int64_t dim, int64_t hidden, double drop_rate) : drop_rate_(drop_rate) {
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    auto dw = register_module("dwconv", std::make_shared<nn::Module>());
    dwconv = dw->register_module("dwconv", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1).groups(hidden)));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    auto y = fc1(x);
    const auto b = y.size(0), c = y.size(2);
    y = dwconv(y.transpose(1, 2).reshape({b, c, h, w})).flatten(2).transpose(1, 2);
    y = fc2(tl::dropout(torch::gelu(y), drop_rate_, is_training()));
    return tl::dropout(y, drop_rate_, is_training());
  }

 private:
  double drop_rate_;
  nn::Linear fc1{nullptr}, fc2{nullptr};
  nn::Conv2d dwconv{nullptr};
};
TORCH_MODULE(MitMlp);

class MitBlockImpl : public nn::Module {
 public:
  MitBlockImpl(int64_t dim, int64_t heads, int64_t sr_ratio, double drop_path_rate, double drop_rate)
      : drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", tl::SrAttention(tl::SrAttentionOptions(dim, heads)
                                                      .sr_ratio(sr_ratio)
                                                      .norm_eps(kMitEps)
                                                      .proj_drop(drop_rate)));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", MitMlp(dim, dim * kMitMlpRatio, drop_rate));
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto b = x.size(0), h = x.size(2), w = x.size(3);
    auto t = x.flatten(2).transpose(1, 2);
    t = t + tl::drop_path(attn(norm1(t), h, w), drop_path_rate_, is_training());
    t = t + tl::drop_path(mlp(norm2(t), h, w), drop_path_rate_, is_training());
    return t.transpose(1, 2).reshape({b, -1, h, w});
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  tl::SrAttention attn{nullptr};
  MitMlp mlp{nullptr};
};
TORCH_MODULE(MitBlock);

// Overlapping patch embedding: a strided conv, then LayerNorm over channels.
class OverlapPatchEmbedImpl : public nn::Module {
 public:
  OverlapPatchEmbedImpl(int64_t in, int64_t dim, int64_t patch, int64_t stride) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, dim, patch).stride(stride).padding(patch / 2)));
    norm = register_module("norm", layer_norm(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm_2d(norm, proj(x)); }

 private:
  nn::Conv2d proj{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(OverlapPatchEmbed);

class MixTransformerEncoderImpl : public SmpEncoderImpl {
 public:
  MixTransformerEncoderImpl(const MitSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o, "Mix Transformer supports output_stride 32 only: dilating its strided patch "
                       "embeddings would change what its attention sees");
    std::vector<int64_t> channels = {3, 0};
    // smp's mit_b* encoders default to drop_path_rate 0.1; EncoderOptions defaults to 0.
    const auto drop_path_rates = tl::drop_path_rates(o.drop_path_rate(), spec.depths);
    int64_t in = o.in_channels();
    for (size_t s = 0; s < 4; ++s) {
      const auto dim = spec.embed_dims[s];
      const auto id = std::to_string(s + 1);
      embeds_.push_back(register_module("patch_embed" + id, OverlapPatchEmbed(in, dim, s == 0 ? 7 : 3, s == 0 ? 4 : 2)));
      nn::Sequential blocks;
      for (const double rate : drop_path_rates[s])
        blocks->push_back(MitBlock(dim, kMitHeads[s], kMitSrRatios[s], rate, o.drop_rate()));
      blocks_.push_back(register_module("block" + id, blocks));
      norms_.push_back(register_module("norm" + id, layer_norm(dim)));
      channels.push_back(dim);
      in = dim;
    }
    set_out_channels(channels);
    load_weights(*this, o.weights(), "patch_embed1.proj.weight", drop_prefixes({"head."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    // A 0-channel placeholder stands for the missing stride-2 feature.
    std::vector<torch::Tensor> features{
        x, torch::empty({x.size(0), 0, x.size(2) / 2, x.size(3) / 2}, x.options())};
    auto y = x;
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      const auto u = static_cast<size_t>(s);
      y = norm_2d(norms_[u], blocks_[u]->forward(embeds_[u](y))).contiguous();
      features.push_back(y);
    }
    return features;
  }

 private:
  std::vector<OverlapPatchEmbed> embeds_;
  std::vector<nn::Sequential> blocks_;
  std::vector<nn::LayerNorm> norms_;
};

}  // namespace

void register_group() {
  const std::vector<int64_t> wide = {64, 128, 320, 512};
  add<MixTransformerEncoderImpl>("mit_b0", MitSpec{{32, 64, 160, 256}, {2, 2, 2, 2}},
      {{"imagenet", "9ce53d104d92d75aabb00aae70677aaab67e7c84"}});
  add<MixTransformerEncoderImpl>("mit_b1", MitSpec{wide, {2, 2, 2, 2}},
      {{"imagenet", "a04bf4f13a549bce677cf79b04852e7510782817"}});
  add<MixTransformerEncoderImpl>("mit_b2", MitSpec{wide, {3, 4, 6, 3}},
      {{"imagenet", "868ab6f13871dcf8c3d9f90ee4519403475b65ef"}});
  add<MixTransformerEncoderImpl>("mit_b3", MitSpec{wide, {3, 4, 18, 3}},
      {{"imagenet", "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda"}});
  add<MixTransformerEncoderImpl>("mit_b4", MitSpec{wide, {3, 8, 27, 3}},
      {{"imagenet", "3a3454e900a4b4f11dd60eeb59101a9a1a36b017"}});
  add<MixTransformerEncoderImpl>("mit_b5", MitSpec{wide, {3, 6, 40, 3}},
      {{"imagenet", "ced04d96c586b6297fd59a7a1e244fc78fdb6531"}});
}

}  // namespace smp::smp_encoders::mix_transformer
