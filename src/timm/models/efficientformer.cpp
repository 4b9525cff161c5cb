// EfficientFormer (v1), as timm's efficientformer.py builds it: a PoolFormer-style convolutional
// network whose last stage ends in attention blocks over a fixed 7x7 token grid.
#include <smp/timm.h>

#include <array>
#include <cmath>

#include "timm/layers/helpers.h"
#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace efficientformer {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

constexpr int64_t kNumStages = 4;
constexpr int64_t kMlpRatio = 4;
constexpr double kLayerScaleInit = 1e-5;

// Multi-head self-attention with a learned bias per head and relative (|dy|, |dx|) offset of the
// fixed resolution x resolution grid.
class AttentionImpl : public nn::Module {
 public:
  explicit AttentionImpl(int64_t dim, int64_t key_dim = 32, int64_t num_heads = 8, int64_t attn_ratio = 4,
                         int64_t resolution = 7)
      : num_heads_(num_heads),
        key_dim_(key_dim),
        val_dim_(attn_ratio * key_dim),
        resolution_(resolution),
        scale_(1.0 / std::sqrt(static_cast<double>(key_dim))) {
    qkv_ = register_module("qkv", nn::Linear(dim, 2 * key_dim * num_heads + val_dim_ * num_heads));
    proj_ = register_module("proj", nn::Linear(val_dim_ * num_heads, dim));
    const auto N = resolution * resolution;
    attention_biases_ = register_parameter("attention_biases", torch::zeros({num_heads, N}));
    // Token i sits at (i / resolution, i % resolution); the index of a pair is |dy| * resolution + |dx|.
    auto pos = torch::arange(N, torch::kLong);
    auto row = torch::div(pos, resolution, "floor"), col = torch::remainder(pos, resolution);
    auto dy = (row.unsqueeze(1) - row.unsqueeze(0)).abs(), dx = (col.unsqueeze(1) - col.unsqueeze(0)).abs();
    attention_bias_idxs_ = register_buffer("attention_bias_idxs", dy * resolution + dx);
  }

  // x: (B, N, C) with N = resolution^2.
  torch::Tensor forward(const torch::Tensor& x) {
    const auto B = x.size(0), N = x.size(1);
    if (N != resolution_ * resolution_)
      throw std::invalid_argument("EfficientFormer attention works on a fixed " + std::to_string(resolution_) + "x" +
                                  std::to_string(resolution_) + " grid of the last stage (e.g. 224x224 inputs); got " +
                                  std::to_string(N) + " tokens");
    auto qkv = qkv_(x).reshape({B, N, num_heads_, -1}).permute({0, 2, 1, 3});
    auto parts = qkv.split_with_sizes({key_dim_, key_dim_, val_dim_}, 3);
    auto attn = torch::matmul(parts[0], parts[1].transpose(-2, -1)) * scale_;
    // The stored index table is used as is, like timm (checkpoints carry it).
    attn = attn + attention_biases_.index({torch::indexing::Slice(), attention_bias_idxs_});
    auto y = torch::matmul(attn.softmax(-1), parts[2]).transpose(1, 2).reshape({B, N, num_heads_ * val_dim_});
    return proj_(y);
  }

 private:
  int64_t num_heads_, key_dim_, val_dim_, resolution_;
  double scale_;
  nn::Linear qkv_{nullptr}, proj_{nullptr};
  torch::Tensor attention_biases_, attention_bias_idxs_;
};
TORCH_MODULE(Attention);

// Two 3x3 stride-2 conv + BatchNorm + ReLU layers (timm's Stem4).
class Stem4Impl : public nn::Module {
 public:
  Stem4Impl(int64_t in_chs, int64_t out_chs) {
    auto conv = [](int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(2).padding(1)); };
    conv1_ = register_module("conv1", conv(in_chs, out_chs / 2));
    norm1_ = register_module("norm1", nn::BatchNorm2d(out_chs / 2));
    conv2_ = register_module("conv2", conv(out_chs / 2, out_chs));
    norm2_ = register_module("norm2", nn::BatchNorm2d(out_chs));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::relu(norm2_(conv2_(torch::relu(norm1_(conv1_(x))))));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(Stem4);

// 3x3 stride-2 conv + BatchNorm between stages.
class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in_chs, int64_t out_chs) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in_chs, out_chs, 3).stride(2).padding(1)));
    norm_ = register_module("norm", nn::BatchNorm2d(out_chs));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm_(conv_(x)); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
};
TORCH_MODULE(Downsample);

// NCHW -> (B, H*W, C) tokens. A parameter-free child of the blocks Sequential, registered so that the
// blocks after it keep timm's indices.
class FlatImpl : public nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) { return x.flatten(2).transpose(1, 2); }
};
TORCH_MODULE(Flat);

// 1x1 conv MLP with BatchNorm after each conv.
class ConvMlpWithNormImpl : public nn::Module {
 public:
  ConvMlpWithNormImpl(int64_t dim, int64_t hidden) {
    fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(dim, hidden, 1)));
    norm1_ = register_module("norm1", nn::BatchNorm2d(hidden));
    fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(hidden, dim, 1)));
    norm2_ = register_module("norm2", nn::BatchNorm2d(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm2_(fc2_(torch::gelu(norm1_(fc1_(x))))); }

 private:
  nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
  nn::BatchNorm2d norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(ConvMlpWithNorm);

// PoolFormer block on NCHW maps: the token mixer is avg-pool(x) - x.
class MetaBlock2dImpl : public nn::Module {
 public:
  MetaBlock2dImpl(int64_t dim, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    ls1_ = register_module("ls1", layers::LayerScale2d(dim, kLayerScaleInit));
    mlp_ = register_module("mlp", ConvMlpWithNorm(dim, dim * kMlpRatio));
    ls2_ = register_module("ls2", layers::LayerScale2d(dim, kLayerScaleInit));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto pooled = F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
    x = x + layers::drop_path(ls1_(pooled - x), drop_path_rate_, is_training());
    return x + layers::drop_path(ls2_(mlp_(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  layers::LayerScale2d ls1_{nullptr}, ls2_{nullptr};
  ConvMlpWithNorm mlp_{nullptr};
};
TORCH_MODULE(MetaBlock2d);

// Transformer block on (B, N, C) tokens.
class MetaBlock1dImpl : public nn::Module {
 public:
  MetaBlock1dImpl(int64_t dim, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    norm1_ = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({dim})));
    token_mixer_ = register_module("token_mixer", Attention(dim));
    ls1_ = register_module("ls1", layers::LayerScale(dim, kLayerScaleInit));
    norm2_ = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({dim})));
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * kMlpRatio)));
    ls2_ = register_module("ls2", layers::LayerScale(dim, kLayerScaleInit));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + layers::drop_path(ls1_(token_mixer_(norm1_(x))), drop_path_rate_, is_training());
    return x + layers::drop_path(ls2_(mlp_(norm2_(x))), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Attention token_mixer_{nullptr};
  layers::LayerScale ls1_{nullptr}, ls2_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(MetaBlock1d);

// Optional downsample, then one block per stochastic depth rate, of which the last `num_vit` are
// transformer blocks, preceded by a Flat.
class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t dim, int64_t dim_out, const std::vector<double>& drop_path_rates, bool downsample,
            int64_t num_vit) {
    if (downsample) downsample_ = register_module("downsample", Downsample(dim, dim_out));
    const auto depth = static_cast<int64_t>(drop_path_rates.size());
    blocks_ = nn::Sequential();
    if (num_vit >= depth) blocks_->push_back(Flat());
    for (int64_t i = 0; i < depth; ++i) {
      const int64_t remaining = depth - i - 1;
      const double drop_path_rate = drop_path_rates[static_cast<size_t>(i)];
      if (num_vit > remaining) {
        blocks_->push_back(MetaBlock1d(dim_out, drop_path_rate));
      } else {
        blocks_->push_back(MetaBlock2d(dim_out, drop_path_rate));
        if (num_vit > 0 && num_vit == remaining) blocks_->push_back(Flat());
      }
    }
    register_module("blocks", blocks_);
  }

  // The stage output and the (H, W) grid its blocks run on (tokens of that grid after a Flat).
  std::tuple<torch::Tensor, int64_t, int64_t> forward(torch::Tensor x) {
    if (downsample_) x = downsample_(x);
    const auto H = x.size(2), W = x.size(3);
    return {blocks_->forward(x), H, W};
  }

 private:
  Downsample downsample_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Stage);

struct EfficientFormerConfig {
  std::array<int64_t, kNumStages> depths, widths;
  int64_t num_vit;  // transformer blocks at the end of the last stage
};

class EfficientFormerImpl : public BackboneImpl {
 public:
  EfficientFormerImpl(const std::string& name, const EfficientFormerConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " does not support output_stride=" + std::to_string(args.output_stride()) +
                                  " (EfficientFormer has no dilated variant; use 32)");
    for (int64_t i = 0; i < kNumStages; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), cfg.widths[i], int64_t{4} << i});

    // features_only mirrors timm's prune_intermediate_layers: no final norm or heads, and no stages
    // after the last selected one.
    const int64_t num_stages = layers::last_feature_index(args, kNumStages, name) + 1;

    stem_ = register_module("stem", Stem4(args.in_chans(), cfg.widths[0]));
    const auto drop_path_rates =
        layers::drop_path_rates(args.drop_path_rate(), std::vector<int64_t>(cfg.depths.begin(), cfg.depths.end()));
    auto stages = register_module("stages", nn::ModuleList());
    for (int64_t i = 0; i < num_stages; ++i) {
      const int64_t in = i == 0 ? cfg.widths[0] : cfg.widths[i - 1];
      stages_.push_back(Stage(in, cfg.widths[i], drop_path_rates[static_cast<size_t>(i)], /*downsample=*/i > 0,
                              i == kNumStages - 1 ? cfg.num_vit : 0));
      stages->push_back(stages_.back());
    }
    if (args.features_only()) return;

    const auto num_features = cfg.widths[kNumStages - 1];
    norm_ = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({num_features})));
    if (args.num_classes() > 0) {
      head_ = register_module("head", nn::Linear(num_features, args.num_classes()));
      head_dist_ = register_module("head_dist", nn::Linear(num_features, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto built = static_cast<int64_t>(stages_.size());
    layers::check_feature_indices(indices, built, model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      auto [z, H, W] = stages_[i](y);
      y = z;
      if (i != indices[out.size()]) continue;
      // The last stage returns tokens of its H x W grid.
      out.push_back(y.dim() == 3 ? y.reshape({y.size(0), H, W, -1}).permute({0, 3, 1, 2}).contiguous() : y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_(x);
    for (auto& stage : stages_) y = std::get<0>(stage(y));
    // One dropout feeds both classifiers, so classify() (a dropout per classifier) does not fit.
    auto pooled = layers::dropout(norm_(y).mean(1), head_drop_rate(), is_training());
    // The distilled model averages its two classifiers at inference.
    return head_ ? (head_(pooled) + head_dist_(pooled)) / 2 : pooled;
  }

  std::string first_conv() const override { return "stem.conv1"; }
  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }

 private:
  Stem4 stem_{nullptr};
  std::vector<Stage> stages_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear head_{nullptr}, head_dist_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, EfficientFormerConfig>> variants = {
      {"efficientformer_l1", {{3, 2, 6, 4}, {48, 96, 224, 448}, 1}},
      {"efficientformer_l3", {{4, 4, 12, 6}, {64, 128, 320, 512}, 4}},
      {"efficientformer_l7", {{6, 6, 18, 8}, {96, 192, 384, 768}, 8}},
  };
  for (const auto& [name, cfg] : variants) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "efficientformer";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return std::make_shared<EfficientFormerImpl>(name, cfg, args);
    };
    register_model(std::move(entry));
  }
}

}  // namespace efficientformer
}  // namespace smp::timm
