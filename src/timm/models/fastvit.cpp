// FastViT and MobileCLIP's image towers (timm's fastvit.py): a MobileOne stem, then stages of RepMixer
// blocks (depthwise conv token mixing) and, in the hybrid models, attention blocks after a conditional
// position encoding. Every training-time multi-branch part folds into single convolutions with
// `reparameterize()`.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/mobileone.h"

namespace smp::timm {

namespace fastvit {
namespace {

namespace nn = torch::nn;

constexpr int64_t kRepMixerKernel = 3;
constexpr int64_t kDownPatchSize = 7;  // large kernel of the downsampling convolutions
constexpr int64_t kPosEncKernel = 7;
constexpr int64_t kHeadDim = 32;
constexpr double kLayerScaleInit = 1e-5;

struct FastVitConfig {
  std::vector<int64_t> depths, dims;
  int64_t mlp_ratio = 4;
  int64_t attention_stages = 0;       // the last n stages mix tokens by attention, the others by RepMixer
  bool se_downsample = false;         // squeeze-excite in the downsampling of stages 2 and 3 (MCi0-2)
  bool lkc_use_act = false;           // GELU after the downsampling's large-kernel conv
  bool layer_norm = false;            // LayerNorm2d (eps 1e-5) instead of BatchNorm2d before attention
  bool stem_scale_branch = true;      // 1x1 scale branches in the stem's MobileOne blocks
  std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  int64_t num_classes = 1000;
};

layers::MobileOneBlockOptions mobileone(int64_t in, int64_t out, int64_t kernel) {
  return layers::MobileOneBlockOptions(in, out, kernel).act("gelu").attn_name("se");
}

// Per-channel scale with fastvit's (dim, 1, 1) parameter shape.
class LayerScale2dImpl : public nn::Module {
 public:
  explicit LayerScale2dImpl(int64_t dim) {
    gamma = register_parameter("gamma", torch::full({dim, 1, 1}, kLayerScaleInit));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale2d);

// A large depthwise kxk conv-BN plus a small (3x3) one on the same input; squeeze-excite and the
// activation follow. Folds into one kxk convolution.
class ReparamLargeKernelConvImpl : public nn::Module, public layers::Reparameterizable {
 public:
  ReparamLargeKernelConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t small_kernel, bool se,
                             const std::string& act)
      : stride_(stride), groups_(in), act_(layers::get_act(act)) {
    auto branch = [&](int64_t k) {
      return layers::ConvNormAct(layers::ConvNormActOptions(in, out, k).stride(stride).groups(in).act(""));
    };
    large_conv_ = register_module("large_conv", branch(kernel));
    small_conv_ = register_module("small_conv", branch(small_kernel));
    if (se) se_ = register_module("se", layers::SEModule(out, 0.25));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = reparam_conv_ ? reparam_conv_(x) : large_conv_(x) + small_conv_(x);
    if (se_) y = se_(y);
    return act_(y);
  }

  bool reparameterize() override {
    if (reparam_conv_) return false;
    torch::NoGradGuard no_grad;
    auto [kernel, bias] = layers::fuse_conv_bn(*large_conv_);
    auto [small_kernel, small_bias] = layers::fuse_conv_bn(*small_conv_);
    const auto pad = (kernel.size(-1) - small_kernel.size(-1)) / 2;
    kernel = kernel + torch::constant_pad_nd(small_kernel, {pad, pad, pad, pad});
    reparam_conv_ = register_module("reparam_conv", layers::folded_conv(kernel, bias + small_bias, stride_, groups_));
    unregister_module("large_conv");
    unregister_module("small_conv");
    large_conv_ = nullptr;
    small_conv_ = nullptr;
    return true;
  }

 private:
  int64_t stride_, groups_;
  layers::ConvNormAct large_conv_{nullptr}, small_conv_{nullptr};
  layers::SEModule se_{nullptr};
  nn::Conv2d reparam_conv_{nullptr};
  layers::ActFn act_;
};
TORCH_MODULE(ReparamLargeKernelConv);

// Token mixing x + scale * (mixer(x) - norm(x)) with depthwise MobileOne blocks (norm: the BatchNorm
// identity branch only). Folds, identity included, into one depthwise convolution.
class RepMixerImpl : public nn::Module, public layers::Reparameterizable {
 public:
  explicit RepMixerImpl(int64_t dim) : dim_(dim) {
    auto block = mobileone(dim, dim, kRepMixerKernel).groups(dim).act("");
    norm_ = register_module("norm", layers::MobileOneBlock(block.num_conv_branches(0).scale_branch(false)));
    mixer_ = register_module("mixer", layers::MobileOneBlock(mobileone(dim, dim, kRepMixerKernel).groups(dim).act("")));
    layer_scale_ = register_module("layer_scale", LayerScale2d(dim));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    if (reparam_conv_) return reparam_conv_(x);
    return x + layer_scale_(mixer_(x) - norm_(x));
  }

  bool reparameterize() override {
    if (reparam_conv_) return false;
    torch::NoGradGuard no_grad;
    auto [mixer_kernel, mixer_bias] = mixer_->kernel_bias();
    auto [norm_kernel, norm_bias] = norm_->kernel_bias();
    const auto& gamma = layer_scale_->gamma;
    auto kernel = layers::identity_kernel(dim_, dim_, kRepMixerKernel, kRepMixerKernel, gamma.options()) +
                  gamma.unsqueeze(-1) * (mixer_kernel - norm_kernel);
    auto bias = gamma.flatten() * (mixer_bias - norm_bias);
    reparam_conv_ = register_module("reparam_conv", layers::folded_conv(kernel, bias, 1, dim_));
    for (const char* name : {"mixer", "norm", "layer_scale"}) unregister_module(name);
    mixer_ = nullptr;
    norm_ = nullptr;
    layer_scale_ = nullptr;
    return true;
  }

 private:
  int64_t dim_;
  layers::MobileOneBlock norm_{nullptr}, mixer_{nullptr};
  LayerScale2d layer_scale_{nullptr};
  nn::Conv2d reparam_conv_{nullptr};
};
TORCH_MODULE(RepMixer);

// Conditional position encoding x + depthwise 7x7 conv(x); folds into the convolution.
class RepConditionalPosEncImpl : public nn::Module, public layers::Reparameterizable {
 public:
  explicit RepConditionalPosEncImpl(int64_t dim) : dim_(dim) {
    pos_enc_ = register_module("pos_enc", nn::Conv2d(nn::Conv2dOptions(dim, dim, kPosEncKernel)
                                                         .padding(kPosEncKernel / 2)
                                                         .groups(dim)
                                                         .bias(true)));
  }

  torch::Tensor forward(const torch::Tensor& x) { return reparam_conv_ ? reparam_conv_(x) : pos_enc_(x) + x; }

  bool reparameterize() override {
    if (reparam_conv_) return false;
    torch::NoGradGuard no_grad;
    auto kernel = layers::identity_kernel(dim_, dim_, kPosEncKernel, kPosEncKernel, pos_enc_->weight.options()) +
                  pos_enc_->weight;
    reparam_conv_ = register_module("reparam_conv", layers::folded_conv(kernel, pos_enc_->bias, 1, dim_));
    unregister_module("pos_enc");
    pos_enc_ = nullptr;
    return true;
  }

 private:
  int64_t dim_;
  nn::Conv2d pos_enc_{nullptr}, reparam_conv_{nullptr};
};
TORCH_MODULE(RepConditionalPosEnc);

// Depthwise 7x7 conv-BN, then a 1x1 conv MLP with GELU.
class ConvMlpImpl : public nn::Module {
 public:
  ConvMlpImpl(int64_t dim, int64_t hidden) {
    conv_ = register_module("conv", layers::ConvNormAct(layers::ConvNormActOptions(dim, dim, 7).groups(dim).act("")));
    fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(dim, hidden, 1)));
    fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(hidden, dim, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2_(torch::gelu(fc1_(conv_(x)))); }

 private:
  layers::ConvNormAct conv_{nullptr};
  nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(ConvMlp);

class RepMixerBlockImpl : public nn::Module {
 public:
  RepMixerBlockImpl(int64_t dim, int64_t mlp_ratio, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    token_mixer_ = register_module("token_mixer", RepMixer(dim));
    mlp_ = register_module("mlp", ConvMlp(dim, dim * mlp_ratio));
    layer_scale_ = register_module("layer_scale", LayerScale2d(dim));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = token_mixer_(x);
    return x + layers::drop_path(layer_scale_(mlp_(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  RepMixer token_mixer_{nullptr};
  ConvMlp mlp_{nullptr};
  LayerScale2d layer_scale_{nullptr};
};
TORCH_MODULE(RepMixerBlock);

// Multi-head self-attention (head dim 32, no qkv bias) over the H*W positions of a normalised map.
class AttentionBlockImpl : public nn::Module {
 public:
  AttentionBlockImpl(int64_t dim, int64_t mlp_ratio, bool layer_norm, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    if (layer_norm)
      norm_ = nn::AnyModule(layers::LayerNorm2d(dim, 1e-5));
    else
      norm_ = nn::AnyModule(nn::BatchNorm2d(dim));
    register_module("norm", norm_.ptr());
    token_mixer_ = register_module(
        "token_mixer", layers::Attention(layers::AttentionOptions(dim, dim / kHeadDim).qkv_bias(false)));
    layer_scale_1_ = register_module("layer_scale_1", LayerScale2d(dim));
    mlp_ = register_module("mlp", ConvMlp(dim, dim * mlp_ratio));
    layer_scale_2_ = register_module("layer_scale_2", LayerScale2d(dim));
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    auto tokens = norm_.forward(x).flatten(2).transpose(1, 2);
    auto mixed = token_mixer_(tokens).transpose(1, 2).reshape({B, C, H, W});
    x = x + layers::drop_path(layer_scale_1_(mixed), drop_path_rate_, is_training());
    return x + layers::drop_path(layer_scale_2_(mlp_(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::AnyModule norm_;
  layers::Attention token_mixer_{nullptr};
  LayerScale2d layer_scale_1_{nullptr}, layer_scale_2_{nullptr};
  ConvMlp mlp_{nullptr};
};
TORCH_MODULE(AttentionBlock);

// Stride-2 downsampling: a large-kernel depthwise conv, then a 1x1 MobileOne block ("proj.0", "proj.1").
class PatchEmbedImpl : public nn::Module {
 public:
  PatchEmbedImpl(int64_t in, int64_t out, bool se, bool lkc_use_act) {
    proj_ = register_module(
        "proj", nn::Sequential(ReparamLargeKernelConv(in, out, kDownPatchSize, 2, 3, se, lkc_use_act ? "gelu" : ""),
                               layers::MobileOneBlock(mobileone(out, out, 1))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return proj_->forward(x); }

 private:
  nn::Sequential proj_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Optional downsampling, optional conditional position encoding (before attention), then one block
// per stochastic depth rate.
class FastVitStageImpl : public nn::Module {
 public:
  FastVitStageImpl(int64_t dim, int64_t dim_out, const std::vector<double>& drop_path_rates, bool downsample,
                   bool attention, bool se_downsample, const FastVitConfig& c) {
    if (downsample) downsample_ = register_module("downsample", PatchEmbed(dim, dim_out, se_downsample, c.lkc_use_act));
    if (attention) pos_emb_ = register_module("pos_emb", RepConditionalPosEnc(dim_out));
    blocks_ = register_module("blocks", nn::Sequential());
    for (const double rate : drop_path_rates) {
      if (attention)
        blocks_->push_back(AttentionBlock(dim_out, c.mlp_ratio, c.layer_norm, rate));
      else
        blocks_->push_back(RepMixerBlock(dim_out, c.mlp_ratio, rate));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    if (downsample_) x = downsample_(x);
    if (pos_emb_) x = pos_emb_(x);
    return blocks_->forward(x);
  }

 private:
  PatchEmbed downsample_{nullptr};
  nn::Sequential blocks_{nullptr};
  RepConditionalPosEnc pos_emb_{nullptr};
};
TORCH_MODULE(FastVitStage);

class FastVitImpl : public BackboneImpl {
 public:
  FastVitImpl(const std::string& name, const FastVitConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto num_stages = static_cast<int64_t>(c.depths.size());
    auto stem_block = [&](int64_t in, int64_t kernel, int64_t stride, int64_t groups) {
      return layers::MobileOneBlock(
          mobileone(in, c.dims[0], kernel).stride(stride).groups(groups).scale_branch(c.stem_scale_branch));
    };
    stem_ = register_module("stem", nn::Sequential(stem_block(args.in_chans(), 3, 2, 1),
                                                   stem_block(c.dims[0], 3, 2, c.dims[0]),
                                                   stem_block(c.dims[0], 1, 1, 1)));
    for (int64_t i = 0; i < num_stages; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[i], int64_t{4} << i});

    // features_only builds the stages up to the last selected one (timm's default selection is the
    // first four stages, also for the five-stage models).
    const int64_t last = args.features_only() && args.out_indices().empty()
                             ? int64_t{3}
                             : layers::last_feature_index(args, num_stages, name);
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    int64_t prev = c.dims[0];
    for (int64_t i = 0; i <= last && i < num_stages; ++i) {
      const bool attention = i >= num_stages - c.attention_stages;
      const bool se = c.se_downsample && i >= 2;
      // Every stage but the first halves the resolution.
      stages_->push_back(FastVitStage(prev, c.dims[i], drop_path_rates[static_cast<size_t>(i)], /*downsample=*/i > 0,
                                      attention, se, c));
      prev = c.dims[i];
    }
    if (args.features_only()) return;

    final_conv_ = register_module(
        "final_conv", layers::MobileOneBlock(mobileone(prev, 2 * prev, 3).groups(prev),
                                             nn::AnyModule(layers::SEModule(2 * prev, 1.0 / 16, 1))));
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(2 * prev, args.num_classes()));
    }
  }

  std::vector<int64_t> default_out_indices() const override { return {0, 1, 2, 3}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<FastVitStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(final_conv_(stages_->forward(stem_->forward(x))), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0.conv_kxk.0.conv"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  layers::MobileOneBlock final_conv_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<double> kZero = {0.0, 0.0, 0.0}, kOne = {1.0, 1.0, 1.0};
  const std::vector<double> kClipMean = {0.48145466, 0.4578275, 0.40821073};
  const std::vector<double> kClipStd = {0.26862954, 0.26130258, 0.27577711};
  const std::vector<int64_t> k64 = {64, 128, 256, 512};
  // MobileCLIP image towers (mci*): squeeze-excite downsampling, large-kernel GELU, CLIP embeddings.
  auto mci = [&](std::vector<int64_t> depths, std::vector<int64_t> dims) {
    FastVitConfig c{std::move(depths), std::move(dims), 3, 1, true, true};
    c.mean = kZero;
    c.std = kOne;
    c.num_classes = 512;
    return c;
  };
  auto mci_large = [&](std::vector<int64_t> depths, std::vector<int64_t> dims) {
    FastVitConfig c{std::move(depths), std::move(dims), 4, 2, false, true, true, false};
    c.mean = kClipMean;
    c.std = kClipStd;
    c.num_classes = 768;
    return c;
  };
  const std::vector<std::pair<std::string, FastVitConfig>> models = {
      {"fastvit_t8", {{2, 2, 4, 2}, {48, 96, 192, 384}, 3}},
      {"fastvit_t12", {{2, 2, 6, 2}, k64, 3}},
      {"fastvit_s12", {{2, 2, 6, 2}, k64, 4}},
      {"fastvit_sa12", {{2, 2, 6, 2}, k64, 4, 1}},
      {"fastvit_sa24", {{4, 4, 12, 4}, k64, 4, 1}},
      {"fastvit_sa36", {{6, 6, 18, 6}, k64, 4, 1}},
      {"fastvit_ma36", {{6, 6, 18, 6}, {76, 152, 304, 608}, 4, 1}},
      {"fastvit_mci0", mci({2, 6, 10, 2}, k64)},
      {"fastvit_mci1", mci({4, 12, 20, 4}, k64)},
      {"fastvit_mci2", mci({4, 12, 24, 4}, {80, 160, 320, 640})},
      {"fastvit_mci3", mci_large({2, 12, 24, 4, 2}, {96, 192, 384, 768, 1536})},
      {"fastvit_mci4", mci_large({2, 12, 24, 4, 4}, {128, 256, 512, 1024, 2048})},
  };
  register_configs<FastVitImpl>("fastvit", models, [](ModelEntry& e, const FastVitConfig& c) {
    e.mean = c.mean;
    e.std = c.std;
    e.num_classes = c.num_classes;
  });
}

}  // namespace fastvit
}  // namespace smp::timm
