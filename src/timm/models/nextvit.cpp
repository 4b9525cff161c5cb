// Next-ViT (timm's nextvit.py): stages of convolutional blocks (grouped-conv attention + conv MLP)
// with a transformer block closing stages 2-4, whose efficient self-attention pools keys and values
// over the token sequence.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/mobileone.h"

namespace smp::timm {

namespace nextvit {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

constexpr int64_t kHeadDim = 32;
constexpr double kMixBlockRatio = 0.75;

// Next-ViT's own channel rounding (its _make_divisible, which differs from timm's helper only in
// taking an integer input).
int64_t make_divisible(int64_t v, int64_t divisor) {
  int64_t out = std::max(divisor, (v + divisor / 2) / divisor * divisor);
  if (static_cast<double>(out) < 0.9 * static_cast<double>(v)) out += divisor;
  return out;
}

// conv (padding 1, no bias) -> BatchNorm -> ReLU.
class ConvNormActImpl : public nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t stride) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    norm_ = register_module("norm", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(norm_(conv_(x))); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
};
TORCH_MODULE(ConvNormAct);

// Width change and/or 2x downsampling: [avg pool] -> 1x1 conv -> BatchNorm; identity otherwise.
class PatchEmbedImpl : public nn::Module {
 public:
  PatchEmbedImpl(int64_t in, int64_t out, int64_t stride) : pool_(stride == 2) {
    if (stride == 2 || in != out) {
      conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)));
      norm_ = register_module("norm", nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (!conv_) return x;
    const auto& y = pool_ ? F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2).ceil_mode(true).count_include_pad(false)) : x;
    return norm_(conv_(y));
  }

 private:
  bool pool_;
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Multi-head convolutional attention: grouped 3x3 conv (one group per head) -> BN -> ReLU -> 1x1.
class ConvAttentionImpl : public nn::Module {
 public:
  explicit ConvAttentionImpl(int64_t channels) {
    group_conv3x3_ = register_module("group_conv3x3", nn::Conv2d(nn::Conv2dOptions(channels, channels, 3)
                                                                     .padding(1)
                                                                     .groups(channels / kHeadDim)
                                                                     .bias(false)));
    norm_ = register_module("norm", nn::BatchNorm2d(channels));
    projection_ = register_module("projection", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return projection_(torch::relu(norm_(group_conv3x3_(x)))); }

 private:
  nn::Conv2d group_conv3x3_{nullptr}, projection_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
};
TORCH_MODULE(ConvAttention);

layers::Mlp conv_mlp(int64_t channels, double ratio) {
  return layers::Mlp(
      layers::MlpOptions(channels, static_cast<int64_t>(static_cast<double>(channels) * ratio)).act("relu").use_conv(true));
}

// timm's merge_pre_bn: folds the eval-mode BatchNorm(s) applied before a linear map (Linear or 1x1
// conv) into that map's weight and bias; `bn2` (optional) follows `bn1`.
void merge_pre_bn(torch::Tensor weight, torch::Tensor bias, const torch::nn::BatchNorm2dImpl& bn1,
                  const torch::nn::BatchNormImplBase<1, torch::nn::BatchNorm1dImpl>* bn2 = nullptr) {
  torch::NoGradGuard no_grad;
  const double eps1 = bn1.options.eps();
  const auto invstd1 = (bn1.running_var + eps1).rsqrt();
  auto extra_weight = invstd1 * bn1.weight;
  auto extra_bias = bn1.bias - bn1.weight * bn1.running_mean * invstd1;
  if (bn2) {
    const auto invstd2 = (bn2->running_var + bn2->options.eps()).rsqrt();
    extra_weight = extra_weight * invstd2 * bn2->weight;
    extra_bias = invstd2 * bn2->weight * (extra_bias - bn2->running_mean) + bn2->bias;
  }
  auto w2d = weight.view({weight.size(0), weight.size(1)});
  bias.add_(torch::matmul(w2d, extra_bias));
  w2d.mul_(extra_weight.view({1, -1}));
}

torch::Tensor child_param(nn::Module& parent, const std::string& child, const std::string& param) {
  return parent.named_children()[child]->named_parameters(false)[param];
}

class NextConvBlockImpl : public nn::Module, public layers::Reparameterizable {
 public:
  NextConvBlockImpl(int64_t in, int64_t out, int64_t stride, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    patch_embed_ = register_module("patch_embed", PatchEmbed(in, out, stride));
    mhca_ = register_module("mhca", ConvAttention(out));
    norm_ = register_module("norm", nn::BatchNorm2d(out));
    mlp_ = register_module("mlp", conv_mlp(out, 3.0));
  }
  torch::Tensor forward(const torch::Tensor& input) {
    auto x = patch_embed_(input);
    x = x + layers::drop_path(mhca_(x), drop_path_rate_, is_training());
    return x + layers::drop_path(mlp_(norm_ ? norm_(x) : x), drop_path_rate_, is_training());
  }

  // Folds the pre-MLP BatchNorm into mlp.fc1 (timm's NextConvBlock.reparameterize).
  bool reparameterize() override {
    if (!norm_) return false;
    merge_pre_bn(child_param(*mlp_, "fc1", "weight"), child_param(*mlp_, "fc1", "bias"), *norm_);
    unregister_module("norm");
    norm_ = nullptr;
    return true;
  }

 private:
  double drop_path_rate_;
  PatchEmbed patch_embed_{nullptr};
  ConvAttention mhca_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(NextConvBlock);

// Self-attention whose keys/values come from the token sequence average-pooled by sr_ratio^2
// (then BatchNorm1d), when sr_ratio > 1.
class EfficientAttentionImpl : public nn::Module {
 public:
  EfficientAttentionImpl(int64_t dim, int64_t sr_ratio) : num_heads_(dim / kHeadDim), n_ratio_(sr_ratio * sr_ratio) {
    q_ = register_module("q", nn::Linear(dim, dim));
    k_ = register_module("k", nn::Linear(dim, dim));
    v_ = register_module("v", nn::Linear(dim, dim));
    proj_ = register_module("proj", nn::Linear(dim, dim));
    if (sr_ratio > 1) norm_ = register_module("norm", nn::BatchNorm1d(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    auto q = q_(x).reshape({b, n, num_heads_, kHeadDim}).permute({0, 2, 1, 3});
    auto kv_in = x;
    if (n_ratio_ > 1) kv_in = F::avg_pool1d(x.transpose(1, 2), F::AvgPool1dFuncOptions(n_ratio_).stride(n_ratio_)).transpose(1, 2);
    if (norm_) kv_in = norm_(kv_in.transpose(1, 2)).transpose(1, 2);
    auto k = k_(kv_in).reshape({b, -1, num_heads_, kHeadDim}).transpose(1, 2);
    auto v = v_(kv_in).reshape({b, -1, num_heads_, kHeadDim}).transpose(1, 2);
    const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
    auto attn = torch::matmul(q * scale, k.transpose(-1, -2)).softmax(-1);
    return proj_(torch::matmul(attn, v).transpose(1, 2).reshape({b, n, c}));
  }

  // Folds `pre_norm` (the block's norm1) and this module's own key/value norm into q, k and v.
  void fold(const nn::BatchNorm2dImpl& pre_norm) {
    merge_pre_bn(q_->weight, q_->bias, pre_norm);
    const auto* kv_norm = norm_ ? norm_.get() : nullptr;
    merge_pre_bn(k_->weight, k_->bias, pre_norm, kv_norm);
    merge_pre_bn(v_->weight, v_->bias, pre_norm, kv_norm);
    if (norm_) {
      unregister_module("norm");
      norm_ = nullptr;
    }
  }

 private:
  int64_t num_heads_, n_ratio_;
  nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, proj_{nullptr};
  nn::BatchNorm1d norm_{nullptr};
};
TORCH_MODULE(EfficientAttention);

// Self-attention on part of the channels, conv attention on the rest (concatenated), then the MLP.
class NextTransformerBlockImpl : public nn::Module, public layers::Reparameterizable {
 public:
  NextTransformerBlockImpl(int64_t in, int64_t out, int64_t stride, int64_t sr_ratio, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    const int64_t mhsa_out = make_divisible(static_cast<int64_t>(static_cast<double>(out) * kMixBlockRatio), 32);
    const int64_t mhca_out = out - mhsa_out;
    patch_embed_ = register_module("patch_embed", PatchEmbed(in, mhsa_out, stride));
    norm1_ = register_module("norm1", nn::BatchNorm2d(mhsa_out));
    e_mhsa_ = register_module("e_mhsa", EfficientAttention(mhsa_out, sr_ratio));
    projection_ = register_module("projection", PatchEmbed(mhsa_out, mhca_out, 1));
    mhca_ = register_module("mhca", ConvAttention(mhca_out));
    norm2_ = register_module("norm2", nn::BatchNorm2d(out));
    mlp_ = register_module("mlp", conv_mlp(out, 2.0));
  }
  torch::Tensor forward(const torch::Tensor& input) {
    auto x = patch_embed_(input);
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto tokens = (norm1_ ? norm1_(x) : x).reshape({b, c, -1}).transpose(-1, -2);
    tokens = layers::drop_path(e_mhsa_(tokens), drop_path_rate_ * kMixBlockRatio, is_training());
    x = x + tokens.transpose(-1, -2).reshape({b, c, h, w});
    auto out = projection_(x);
    out = out + layers::drop_path(mhca_(out), drop_path_rate_ * (1 - kMixBlockRatio), is_training());
    x = torch::cat({x, out}, 1);
    return x + layers::drop_path(mlp_(norm2_ ? norm2_(x) : x), drop_path_rate_, is_training());
  }

  // timm's NextTransformerBlock.reparameterize: norm1 into q/k/v, norm2 into mlp.fc1.
  bool reparameterize() override {
    if (!norm1_) return false;
    e_mhsa_->fold(*norm1_);
    merge_pre_bn(child_param(*mlp_, "fc1", "weight"), child_param(*mlp_, "fc1", "bias"), *norm2_);
    unregister_module("norm1");
    unregister_module("norm2");
    norm1_ = nullptr;
    norm2_ = nullptr;
    return true;
  }

 private:
  double drop_path_rate_;
  PatchEmbed patch_embed_{nullptr}, projection_{nullptr};
  nn::BatchNorm2d norm1_{nullptr}, norm2_{nullptr};
  EfficientAttention e_mhsa_{nullptr};
  ConvAttention mhca_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(NextTransformerBlock);

class NextViTImpl : public BackboneImpl {
 public:
  NextViTImpl(const std::string& name, const std::vector<int64_t>& depths, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option; got " + std::to_string(args.output_stride()));
    const int64_t last = layers::last_feature_index(args, 4, name);

    // Block widths and kinds per stage (true = transformer block).
    std::vector<std::vector<int64_t>> chs(4);
    std::vector<std::vector<bool>> attn(4);
    for (int64_t i = 0; i < depths[0]; ++i) chs[0].push_back(96), attn[0].push_back(false);
    for (int64_t i = 0; i < depths[1]; ++i) chs[1].push_back(i + 1 < depths[1] ? 192 : 256), attn[1].push_back(i + 1 == depths[1]);
    for (int64_t i = 0; i < depths[2] / 5 * 5; ++i) chs[2].push_back(i % 5 == 4 ? 512 : 384), attn[2].push_back(i % 5 == 4);
    for (int64_t i = 0; i < depths[3]; ++i) chs[3].push_back(i + 1 < depths[3] ? 768 : 1024), attn[3].push_back(i + 1 == depths[3]);
    const std::vector<int64_t> strides = {1, 2, 2, 2}, sr_ratios = {8, 4, 2, 1};

    stem_ = register_module("stem", nn::Sequential());
    stem_->push_back(ConvNormAct(args.in_chans(), 64, 2));
    stem_->push_back(ConvNormAct(64, 32, 1));
    stem_->push_back(ConvNormAct(32, 64, 1));
    stem_->push_back(ConvNormAct(64, 64, 2));

    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), depths);
    auto stages = register_module("stages", nn::ModuleList());
    int64_t in = 64;
    for (size_t si = 0; si < 4; ++si) {
      feature_info_.push_back({"stages." + std::to_string(si), chs[si].back(), int64_t{1} << (si + 2)});
      if (static_cast<int64_t>(si) > last) continue;
      nn::Sequential blocks;
      for (size_t bi = 0; bi < chs[si].size(); ++bi) {
        const int64_t stride = bi == 0 ? strides[si] : 1;
        const double rate = bi < dpr[si].size() ? dpr[si][bi] : 0.0;
        if (attn[si][bi])
          blocks->push_back(NextTransformerBlock(in, chs[si][bi], stride, sr_ratios[si], rate));
        else
          blocks->push_back(NextConvBlock(in, chs[si][bi], stride, rate));
        in = chs[si][bi];
      }
      auto stage = std::make_shared<nn::Module>();
      stage->register_module("blocks", blocks);
      stages->push_back(stage);
      stages_.push_back(blocks);
    }

    if (!args.features_only()) {
      norm_ = register_module("norm", nn::BatchNorm2d(in));
      if (args.num_classes() > 0) {
        auto head = register_module("head", std::make_shared<nn::Module>());
        fc_ = head->register_module("fc", nn::Linear(in, args.num_classes()));
      }
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_->forward(x);
    for (auto& stage : stages_) y = stage->forward(y);
    return pool_and_classify(norm_(y), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0.conv"; }

 private:
  nn::Sequential stem_{nullptr};
  std::vector<nn::Sequential> stages_;
  nn::BatchNorm2d norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> models = {
      {"nextvit_small", {3, 4, 10, 3}},
      {"nextvit_base", {3, 4, 20, 3}},
      {"nextvit_large", {3, 4, 30, 3}},
  };
  register_configs<NextViTImpl>("nextvit", models);
}

}  // namespace nextvit
}  // namespace smp::timm
