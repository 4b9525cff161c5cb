// timm's all-MLP models (mlp_mixer.py): MLP-Mixer, its GLU variant, ResMLP and gMLP. One isotropic
// stack of blocks over patch tokens; the token-mixing layers are sized to the token count of the
// configured image size, so these models take only that input size.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace mlp_mixer {
namespace {

enum class BlockKind { kMixer, kGluMixer, kResMlp, kGated };

struct MixerConfig {
  int64_t patch_size, depth, embed_dim;
  BlockKind kind = BlockKind::kMixer;
  double tokens_ratio = 0.5, channels_ratio = 4.0;  // hidden widths of the token and channel MLPs
  double init_values = 1e-4;                        // ResMLP's layer scale
};

// ResMLP's per-channel "norm": alpha * x + beta.
class AffineImpl : public nn::Module {
 public:
  explicit AffineImpl(int64_t dim)
      : alpha_(register_parameter("alpha", torch::ones({1, 1, dim}))),
        beta_(register_parameter("beta", torch::zeros({1, 1, dim}))) {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::addcmul(beta_, alpha_, x); }

 private:
  torch::Tensor alpha_, beta_;
};
TORCH_MODULE(Affine);

// gMLP's gate: half of the channels, normalized and mixed across tokens, scales the other half.
class SpatialGatingUnitImpl : public nn::Module {
 public:
  SpatialGatingUnitImpl(int64_t dim, int64_t seq_len)
      : norm_(register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim / 2})))),
        proj_(register_module("proj", nn::Linear(seq_len, seq_len))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto halves = x.chunk(2, -1);
    auto v = proj_(norm_(halves[1]).transpose(-1, -2));
    return halves[0] * v.transpose(-1, -2);
  }

 private:
  nn::LayerNorm norm_;
  nn::Linear proj_;
};
TORCH_MODULE(SpatialGatingUnit);

// fc1 -> GELU -> spatial gate -> fc2 (timm's GatedMlp with the gate above).
class GatedMlpImpl : public nn::Module {
 public:
  GatedMlpImpl(int64_t dim, int64_t hidden, int64_t seq_len)
      : fc1_(register_module("fc1", nn::Linear(dim, hidden))),
        gate_(register_module("gate", SpatialGatingUnit(hidden, seq_len))),
        fc2_(register_module("fc2", nn::Linear(hidden / 2, dim))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2_(gate_(torch::gelu(fc1_(x)))); }

 private:
  nn::Linear fc1_;
  SpatialGatingUnit gate_;
  nn::Linear fc2_;
};
TORCH_MODULE(GatedMlp);

nn::LayerNorm block_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

// One block of any of the four kinds; the kind decides which submodules exist (timm's names).
class MixerBlockImpl : public nn::Module {
 public:
  MixerBlockImpl(const MixerConfig& c, int64_t seq_len, double drop_path_rate)
      : kind_(c.kind), drop_path_rate_(drop_path_rate) {
    const auto dim = c.embed_dim;
    const auto channels_hidden = static_cast<int64_t>(c.channels_ratio * static_cast<double>(dim));
    switch (c.kind) {
      case BlockKind::kMixer:
      case BlockKind::kGluMixer: {
        const auto tokens_hidden = static_cast<int64_t>(c.tokens_ratio * static_cast<double>(dim));
        norm1_ = nn::AnyModule(block_norm(dim));
        register_module("norm1", norm1_.ptr());
        mlp_tokens_ = c.kind == BlockKind::kMixer
                          ? nn::AnyModule(layers::Mlp(layers::MlpOptions(seq_len, tokens_hidden)))
                          : nn::AnyModule(layers::GluMlp(seq_len, tokens_hidden / 2, "silu", true));
        register_module("mlp_tokens", mlp_tokens_.ptr());
        norm2_ = nn::AnyModule(block_norm(dim));
        register_module("norm2", norm2_.ptr());
        mlp_channels_ = c.kind == BlockKind::kMixer
                            ? nn::AnyModule(layers::Mlp(layers::MlpOptions(dim, channels_hidden)))
                            : nn::AnyModule(layers::GluMlp(dim, channels_hidden / 2, "silu", true));
        register_module("mlp_channels", mlp_channels_.ptr());
        break;
      }
      case BlockKind::kResMlp:
        norm1_ = nn::AnyModule(Affine(dim));
        register_module("norm1", norm1_.ptr());
        mlp_tokens_ = nn::AnyModule(nn::Linear(seq_len, seq_len));
        register_module("linear_tokens", mlp_tokens_.ptr());
        norm2_ = nn::AnyModule(Affine(dim));
        register_module("norm2", norm2_.ptr());
        mlp_channels_ = nn::AnyModule(layers::Mlp(layers::MlpOptions(dim, channels_hidden)));
        register_module("mlp_channels", mlp_channels_.ptr());
        ls1_ = register_parameter("ls1", torch::full({dim}, c.init_values));
        ls2_ = register_parameter("ls2", torch::full({dim}, c.init_values));
        break;
      case BlockKind::kGated:
        norm1_ = nn::AnyModule(block_norm(dim));
        register_module("norm", norm1_.ptr());
        mlp_channels_ = nn::AnyModule(GatedMlp(dim, channels_hidden, seq_len));
        register_module("mlp_channels", mlp_channels_.ptr());
        break;
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    const bool train = is_training();
    if (kind_ == BlockKind::kGated)
      return x + layers::drop_path(mlp_channels_.forward(norm1_.forward(x)), drop_path_rate_, train);
    auto tokens = mlp_tokens_.forward(norm1_.forward(x).transpose(1, 2)).transpose(1, 2);
    if (ls1_.defined()) tokens = ls1_ * tokens;
    x = x + layers::drop_path(tokens, drop_path_rate_, train);
    auto channels = mlp_channels_.forward(norm2_.forward(x));
    if (ls2_.defined()) channels = ls2_ * channels;
    return x + layers::drop_path(channels, drop_path_rate_, train);
  }

 private:
  BlockKind kind_;
  double drop_path_rate_;
  nn::AnyModule norm1_, norm2_, mlp_tokens_, mlp_channels_;
  torch::Tensor ls1_, ls2_;
};
TORCH_MODULE(MixerBlock);

class MlpMixerImpl : public BackboneImpl {
 public:
  static constexpr int64_t kImgSize = 224;

  MlpMixerImpl(const std::string& name, const MixerConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c), grid_(kImgSize / c.patch_size) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    proj_ = stem->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, c.patch_size).stride(c.patch_size)));
    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, c.patch_size});
    // features_only keeps the blocks up to the last requested one, without the final norm and head.
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < n_blocks; ++i)  // timm applies the full rate to every block
      blocks_->push_back(MixerBlock(c, grid_ * grid_, args.drop_path_rate()));
    if (args.features_only()) return;
    norm_ = c.kind == BlockKind::kResMlp ? nn::AnyModule(Affine(c.embed_dim)) : nn::AnyModule(block_norm(c.embed_dim));
    register_module("norm", norm_.ptr());
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.embed_dim, args.num_classes()));
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::vector<int64_t> default_out_indices() const override {
    constexpr int64_t kLastN = 3;  // timm's default for these models' features: the last three blocks
    std::vector<int64_t> out;
    for (int64_t i = std::max<int64_t>(0, cfg_.depth - kLastN); i < cfg_.depth; ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    auto t = embed(x);
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<MixerBlock>()->forward(t);
      if (i == indices[out.size()])
        out.push_back(t.reshape({x.size(0), grid_, grid_, -1}).permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto t = norm_.forward(blocks_->forward(embed(x)));
    return classify(t.mean(1), head_);
  }

  std::string first_conv() const override { return "stem.proj"; }

 private:
  torch::Tensor embed(const torch::Tensor& x) {
    if (x.size(2) != kImgSize || x.size(3) != kImgSize)
      throw std::invalid_argument(model_name() + " mixes a fixed number of tokens and takes " +
                                  std::to_string(kImgSize) + "x" + std::to_string(kImgSize) + " inputs only, got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                                  "; resize the input or choose another encoder");
    return proj_(x).flatten(2).transpose(1, 2);
  }

  MixerConfig cfg_;
  int64_t grid_;
  nn::Conv2d proj_{nullptr};
  nn::Sequential blocks_{nullptr};
  nn::AnyModule norm_;
  nn::Linear head_{nullptr};
};

MixerConfig mixer(int64_t patch, int64_t depth, int64_t dim) { return {patch, depth, dim}; }
MixerConfig glu_mixer(int64_t depth) { return {16, depth, 384, BlockKind::kGluMixer, 1.0, 4.0}; }
MixerConfig resmlp(int64_t patch, int64_t depth, int64_t dim, double init_values) {
  return {patch, depth, dim, BlockKind::kResMlp, 0.0, 4.0, init_values};
}
MixerConfig gmlp(int64_t dim) { return {16, 30, dim, BlockKind::kGated, 0.0, 6.0}; }

}  // namespace

void register_family() {
  register_configs<MlpMixerImpl, MixerConfig>(
      "mlp_mixer",
      {
          {"mixer_s32_224", mixer(32, 8, 512)},
          {"mixer_s16_224", mixer(16, 8, 512)},
          {"mixer_b32_224", mixer(32, 12, 768)},
          {"mixer_b16_224", mixer(16, 12, 768)},
          {"mixer_l32_224", mixer(32, 24, 1024)},
          {"mixer_l16_224", mixer(16, 24, 1024)},
          {"gmixer_12_224", glu_mixer(12)},
          {"gmixer_24_224", glu_mixer(24)},
          {"resmlp_12_224", resmlp(16, 12, 384, 1e-4)},
          {"resmlp_24_224", resmlp(16, 24, 384, 1e-5)},
          {"resmlp_36_224", resmlp(16, 36, 384, 1e-6)},
          {"resmlp_big_24_224", resmlp(8, 24, 768, 1e-6)},
          {"gmlp_ti16_224", gmlp(128)},
          {"gmlp_s16_224", gmlp(256)},
          {"gmlp_b16_224", gmlp(512)},
      },
      [](ModelEntry& e, const MixerConfig& c) {
        // timm's pretrained statistics: 0.5 for the Google Mixer and the gMLP weights, else ImageNet's.
        if (c.kind == BlockKind::kMixer || c.kind == BlockKind::kGated) e.mean = e.std = {0.5, 0.5, 0.5};
      });
}

}  // namespace mlp_mixer

}  // namespace smp::timm
