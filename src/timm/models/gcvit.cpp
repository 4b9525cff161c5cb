// timm's Global Context ViT (gcvit.py): window attention whose odd blocks take their queries from a
// pooled "global" feature map of the whole stage (one query window shared by all windows), plus a
// relative position bias. Like timm, the structure is fixed by the 224 pretraining size: windows are
// 1/32 (1/16 in stage 2) of it and the global pooling depth follows, so the input must be 224x224.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"
#include "timm/layers/window.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace gcvit {
namespace {

struct GcVitConfig {
  std::vector<int64_t> depths, num_heads;
  int64_t embed_dim = 64;
  double mlp_ratio = 3.0;
  double layer_scale = 0.0;  // 0: none
};
constexpr double kEps = 1e-5;
constexpr int64_t kImgSize = 224;
const int64_t kWindowRatio[] = {32, 32, 16, 32};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(kEps)); }

// Squeeze-excitation without biases and with GELU (timm's SEModule as gcvit configures it).
class SqueezeExciteImpl : public nn::Module {
 public:
  explicit SqueezeExciteImpl(int64_t dim) {
    const auto rd = layers::make_divisible(dim * 0.25, 8, 0.0, 0.0);
    fc1 = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(dim, rd, 1).bias(false)));
    fc2 = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(rd, dim, 1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x * torch::sigmoid(fc2(torch::gelu(fc1(x.mean({2, 3}, true)))));
  }

 private:
  nn::Conv2d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SqueezeExcite);

// Residual depthwise 3x3 -> GELU -> SE -> pointwise, no norm.
class MbConvBlockImpl : public nn::Module {
 public:
  explicit MbConvBlockImpl(int64_t dim) {
    conv_dw = register_module("conv_dw", nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim).bias(false)));
    se = register_module("se", SqueezeExcite(dim));
    conv_pw = register_module("conv_pw", nn::Conv2d(nn::Conv2dOptions(dim, dim, 1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + conv_pw(se(torch::gelu(conv_dw(x)))); }

 private:
  nn::Conv2d conv_dw{nullptr}, conv_pw{nullptr};
  SqueezeExcite se{nullptr};
};
TORCH_MODULE(MbConvBlock);

// LayerNorm2d -> MbConv -> 3x3 stride-2 conv -> LayerNorm2d (NCHW).
class Downsample2dImpl : public nn::Module {
 public:
  Downsample2dImpl(int64_t dim, int64_t out) {
    norm1 = register_module("norm1", layers::LayerNorm2d(dim, kEps));
    conv_block = register_module("conv_block", MbConvBlock(dim));
    reduction = register_module("reduction", nn::Conv2d(nn::Conv2dOptions(dim, out, 3).stride(2).padding(1).bias(false)));
    norm2 = register_module("norm2", layers::LayerNorm2d(out, kEps));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm2(reduction(conv_block(norm1(x)))); }

 private:
  layers::LayerNorm2d norm1{nullptr}, norm2{nullptr};
  MbConvBlock conv_block{nullptr};
  nn::Conv2d reduction{nullptr};
};
TORCH_MODULE(Downsample2d);

// MbConv blocks each followed by a 3x3 stride-2 max pool, `levels` times (one block, no pool, at 0):
// pools the stage's map down to one window, the global queries.
class FeatureBlockImpl : public nn::Module {
 public:
  FeatureBlockImpl(int64_t dim, int64_t levels) : pools_(levels) {
    blocks = register_module("blocks", std::make_shared<nn::Module>());
    for (int64_t i = 0; i < std::max<int64_t>(1, levels); ++i)
      convs_.push_back(blocks->register_module("conv" + std::to_string(i + 1), MbConvBlock(dim)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = convs_[i](x);
      if (static_cast<int64_t>(i) < pools_) x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    }
    return x;
  }

 private:
  int64_t pools_;
  std::shared_ptr<nn::Module> blocks;
  std::vector<MbConvBlock> convs_;
};
TORCH_MODULE(FeatureBlock);

class WindowAttentionGlobalImpl : public nn::Module {
 public:
  WindowAttentionGlobalImpl(int64_t dim, int64_t heads, int64_t window, bool use_global)
      : heads_(heads), area_(window * window), use_global_(use_global) {
    auto rel_pos = register_module("rel_pos", std::make_shared<nn::Module>());
    bias_table_ = rel_pos->register_parameter("relative_position_bias_table",
                                              torch::zeros({(2 * window - 1) * (2 * window - 1), heads}));
    auto coords = torch::stack(torch::meshgrid({torch::arange(window), torch::arange(window)}, "ij")).flatten(1);
    auto rel = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).contiguous();
    rel.select(2, 0).add_(window - 1).mul_(2 * window - 1);
    rel.select(2, 1).add_(window - 1);
    index_ = rel.sum(-1).view(-1);
    qkv = register_module("qkv", nn::Linear(dim, dim * (use_global ? 2 : 3)));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  // x: [B_, N, C] windows; q_global: [B, wh, ww, C] (global blocks only).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& q_global) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    torch::Tensor q, k, v;
    if (use_global_) {
      auto kv = qkv(x).reshape({b, n, 2, heads_, hd}).permute({2, 0, 3, 1, 4});
      k = kv[0];
      v = kv[1];
      // timm tiles the whole batch of global queries over the windows.
      q = q_global.repeat({b / q_global.size(0), 1, 1, 1}).reshape({b, n, heads_, hd}).permute({0, 2, 1, 3});
    } else {
      auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
      q = t[0];
      k = t[1];
      v = t[2];
    }
    auto attn = torch::matmul(q * std::pow(static_cast<double>(hd), -0.5), k.transpose(-2, -1));
    auto bias = bias_table_.index_select(0, index_.to(x.device())).view({area_, area_, heads_}).permute({2, 0, 1});
    attn = (attn + bias.unsqueeze(0)).softmax(-1);
    return proj(torch::matmul(attn, v).transpose(1, 2).reshape({b, n, c}));
  }

 private:
  int64_t heads_, area_;
  bool use_global_;
  torch::Tensor bias_table_, index_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(WindowAttentionGlobal);

class GcVitBlockImpl : public nn::Module {
 public:
  GcVitBlockImpl(int64_t dim, int64_t heads, int64_t window, bool use_global, const GcVitConfig& c, double drop_path_rate)
      : window_(window), drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", WindowAttentionGlobal(dim, heads, window, use_global));
    if (c.layer_scale > 0) ls1 = register_module("ls1", layers::LayerScale(dim, c.layer_scale));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(dim * c.mlp_ratio))));
    if (c.layer_scale > 0) ls2 = register_module("ls2", layers::LayerScale(dim, c.layer_scale));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& q_global) {  // NHWC
    const auto h = x.size(1), w = x.size(2);
    auto y = layers::window_reverse(attn(layers::window_partition(norm1(x), window_, window_), q_global), window_,
                                    window_, h, w);
    if (ls1) y = ls1(y);
    auto out = x + layers::drop_path(y, drop_path_rate_, is_training());
    y = mlp(norm2(out));
    if (ls2) y = ls2(y);
    return out + layers::drop_path(y, drop_path_rate_, is_training());
  }

 private:
  int64_t window_;
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttentionGlobal attn{nullptr};
  layers::LayerScale ls1{nullptr}, ls2{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(GcVitBlock);

class GcVitStageImpl : public nn::Module {
 public:
  // `dim`, `feat`: width and grid size entering the stage (at the 224 pretraining size).
  GcVitStageImpl(int64_t dim, int64_t feat, bool downsample_first, bool stage_norm, int64_t heads, int64_t window,
                 const std::vector<double>& drop_path_rates, const GcVitConfig& c)
      : window_(window) {
    if (downsample_first) {
      downsample = register_module("downsample", Downsample2d(dim, dim * 2));
      dim *= 2;
      feat /= 2;
    }
    const auto levels = static_cast<int64_t>(std::log2(static_cast<double>(feat) / static_cast<double>(window)));
    global_block = register_module("global_block", FeatureBlock(dim, levels));
    blocks = register_module("blocks", nn::ModuleList());
    for (size_t i = 0; i < drop_path_rates.size(); ++i)
      blocks->push_back(GcVitBlock(dim, heads, window, i % 2 != 0, c, drop_path_rates[i]));
    if (stage_norm) norm = register_module("norm", layer_norm(dim));
  }
  torch::Tensor forward(torch::Tensor x) {  // NCHW in and out
    if (downsample) x = downsample(x);
    auto q_global = global_block(x).permute({0, 2, 3, 1});
    const auto h = x.size(2), w = x.size(3);
    if (h % window_ || w % window_ || q_global.size(1) != window_ || q_global.size(2) != window_)
      throw std::invalid_argument("gcvit: a " + std::to_string(h) + "x" + std::to_string(w) +
                                  " stage map does not fit its " + std::to_string(window_) +
                                  "-token windows; gcvit models take 224x224 inputs only");
    x = x.permute({0, 2, 3, 1});
    for (const auto& blk : *blocks) x = blk->as<GcVitBlock>()->forward(x, q_global);
    if (norm) x = norm(x);
    return x.permute({0, 3, 1, 2}).contiguous();
  }

 private:
  int64_t window_;
  Downsample2d downsample{nullptr};
  FeatureBlock global_block{nullptr};
  nn::ModuleList blocks{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(GcVitStage);

class GcVitImpl : public BackboneImpl {
 public:
  GcVitImpl(const std::string& name, const GcVitConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    stem_conv_ = stem->register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, 3).stride(2).padding(1)));
    stem_down_ = stem->register_module("down", Downsample2d(c.embed_dim, c.embed_dim));
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    const int64_t feat = kImgSize / 4;
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      const int64_t scale = int64_t{1} << std::max<int64_t>(i - 1, 0);
      feature_info_.push_back({"stages." + std::to_string(i), c.embed_dim << i, int64_t{4} << i});
      if (i <= last)
        stages_->push_back(GcVitStage(c.embed_dim * scale, feat / scale, i > 0, i == n - 1, c.num_heads[u],
                                      kImgSize / kWindowRatio[u], drop_path_rates[u], c));
    }
    if (args.features_only()) return;
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(c.embed_dim << (n - 1), args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_down_(stem_conv_(x));
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<GcVitStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(stages_->forward(stem_down_(stem_conv_(x))), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv1"; }

 private:
  nn::Conv2d stem_conv_{nullptr};
  Downsample2d stem_down_{nullptr};
  nn::Sequential stages_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> deep{3, 4, 19, 5};
  const std::vector<std::pair<std::string, GcVitConfig>> models = {
      {"gcvit_xxtiny", {{2, 2, 6, 2}, {2, 4, 8, 16}}},
      {"gcvit_xtiny", {{3, 4, 6, 5}, {2, 4, 8, 16}}},
      {"gcvit_tiny", {deep, {2, 4, 8, 16}}},
      {"gcvit_small", {deep, {3, 6, 12, 24}, 96, 2.0, 1e-5}},
      {"gcvit_base", {deep, {4, 8, 16, 32}, 128, 2.0, 1e-5}},
  };
  register_configs<GcVitImpl>("gcvit", models);
}

}  // namespace gcvit
}  // namespace smp::timm
