// timm's Twins (twins.py): PCPVT (global attention over spatially reduced keys/values, like PVT) and
// SVT (alternating locally grouped window attention and global sub-sampled attention), with a
// depthwise-conv position generator after each stage's first block. Any input size.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/sr_attention.h"

namespace smp::timm {

namespace twins {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct TwinsConfig {
  std::vector<int64_t> dims, num_heads, mlp_ratios, depths;
  int64_t window = 0;  // SVT: window of the locally grouped attention; 0 = PCPVT (global only)
};
const std::vector<int64_t> kSrRatios = {8, 4, 2, 1};

nn::LayerNorm layer_norm(int64_t dim, double eps) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(eps)); }

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const auto scale = std::pow(static_cast<double>(q.size(-1)), -0.5);
  return torch::matmul(torch::matmul(q * scale, k.transpose(-2, -1)).softmax(-1), v);
}

// Self-attention inside non-overlapping windows; the grid is zero-padded (after the norm, so padded
// tokens take part as keys, as in timm) to a multiple of the window.
class LocalAttnImpl : public nn::Module {
 public:
  LocalAttnImpl(int64_t dim, int64_t heads, int64_t window) : heads_(heads), ws_(window) {
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    auto y = x.view({b, h, w, c});
    const auto pad_r = (ws_ - w % ws_) % ws_, pad_b = (ws_ - h % ws_) % ws_;
    if (pad_r || pad_b) y = F::pad(y, F::PadFuncOptions({0, 0, 0, pad_r, 0, pad_b}));
    const auto gh = (h + pad_b) / ws_, gw = (w + pad_r) / ws_;
    y = y.reshape({b, gh, ws_, gw, ws_, c}).transpose(2, 3);
    auto t = qkv(y).reshape({b, gh * gw, ws_ * ws_, 3, heads_, c / heads_}).permute({3, 0, 1, 4, 2, 5});
    y = attend(t[0], t[1], t[2]).transpose(2, 3).reshape({b, gh, gw, ws_, ws_, c});
    y = y.transpose(2, 3).reshape({b, gh * ws_, gw * ws_, c});
    if (pad_r || pad_b) y = y.slice(1, 0, h).slice(2, 0, w);
    return proj(y.reshape({b, n, c}));
  }

 private:
  int64_t heads_, ws_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(LocalAttn);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, int64_t sr_ratio, int64_t window, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim, 1e-6));
    if (window > 1)
      local = register_module("attn", LocalAttn(dim, heads, window));
    else
      global = register_module("attn", layers::SrAttention(layers::SrAttentionOptions(dim, heads).sr_ratio(sr_ratio)));
    norm2 = register_module("norm2", layer_norm(dim, 1e-6));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * mlp_ratio)));
  }
  torch::Tensor forward(torch::Tensor x, int64_t h, int64_t w) {
    auto y = norm1(x);
    x = x + layers::drop_path(local ? local(y, h, w) : global(y, h, w), drop_path_rate_, is_training());
    return x + layers::drop_path(mlp(norm2(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  LocalAttn local{nullptr};
  layers::SrAttention global{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class PatchEmbedImpl : public nn::Module {
 public:
  PatchEmbedImpl(int64_t in, int64_t out, int64_t patch) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, out, patch).stride(patch)));
    norm = register_module("norm", layer_norm(out, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(proj(x).flatten(2).transpose(1, 2)); }

 private:
  nn::Conv2d proj{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Depthwise 3x3 conv on the token grid, added to its input (proj is a one-conv Sequential in timm).
class PosConvImpl : public nn::Module {
 public:
  explicit PosConvImpl(int64_t dim) {
    auto seq = register_module("proj", nn::Sequential());
    conv = nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim));
    seq->push_back(conv);
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    const auto b = x.size(0), c = x.size(2);
    auto grid = x.transpose(1, 2).reshape({b, c, h, w});
    return (conv(grid) + grid).flatten(2).transpose(1, 2);
  }

 private:
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(PosConv);

class TwinsImpl : public BackboneImpl {
 public:
  TwinsImpl(const std::string& name, const TwinsConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    // timm's features model keeps every stage (it does not prune blocks), so all are built.
    auto embeds = register_module("patch_embeds", nn::ModuleList());
    int64_t in = args.in_chans();
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      embeds_.push_back(PatchEmbed(in, c.dims[u], i == 0 ? 4 : 2));
      embeds->push_back(embeds_.back());
      in = c.dims[u];
      // timm names these "block.<i>" although the module list is "blocks".
      feature_info_.push_back({"block." + std::to_string(i), c.dims[u], int64_t{4} << i});
    }
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    auto blocks = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      auto stage = nn::ModuleList();
      blocks_.emplace_back();
      for (size_t j = 0; j < rates[u].size(); ++j) {
        const int64_t window = c.window > 0 && j % 2 == 0 ? c.window : 1;
        blocks_.back().push_back(Block(c.dims[u], c.num_heads[u], c.mlp_ratios[u], kSrRatios[u], window, rates[u][j]));
        stage->push_back(blocks_.back().back());
      }
      blocks->push_back(stage);
    }
    auto pos = register_module("pos_block", nn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      pos_.push_back(PosConv(c.dims[static_cast<size_t>(i)]));
      pos->push_back(pos_.back());
    }
    if (args.features_only()) return;
    norm_ = register_module("norm", layer_norm(c.dims.back(), 1e-6));
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.dims.back(), args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(embeds_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = x;
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      int64_t h = 0, w = 0;
      auto t = run_stage(y, i, h, w);
      y = t.reshape({t.size(0), h, w, -1}).permute({0, 3, 1, 2}).contiguous();
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = x;
    torch::Tensor t;
    const auto n = static_cast<int64_t>(embeds_.size());
    for (int64_t i = 0; i < n; ++i) {
      int64_t h = 0, w = 0;
      t = run_stage(y, i, h, w);
      if (i + 1 < n) y = t.reshape({t.size(0), h, w, -1}).permute({0, 3, 1, 2}).contiguous();
    }
    return classify(norm_(t).mean(1), head_);
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::string first_conv() const override { return "patch_embeds.0.proj"; }

 private:
  // NCHW in; the stage's tokens out, with their grid in h, w.
  torch::Tensor run_stage(const torch::Tensor& x, int64_t i, int64_t& h, int64_t& w) {
    const auto u = static_cast<size_t>(i);
    auto t = embeds_[u](x);
    const int64_t patch = i == 0 ? 4 : 2;
    h = x.size(2) / patch;
    w = x.size(3) / patch;
    for (size_t j = 0; j < blocks_[u].size(); ++j) {
      t = blocks_[u][j](t, h, w);
      if (j == 0) t = pos_[u](t, h, w);
    }
    return t;
  }

  std::vector<PatchEmbed> embeds_;
  std::vector<std::vector<Block>> blocks_;
  std::vector<PosConv> pos_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear head_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> pvt_heads{1, 2, 5, 8}, pvt_dims{64, 128, 320, 512}, pvt_mlp{8, 8, 4, 4};
  const std::vector<int64_t> svt_mlp{4, 4, 4, 4};
  const std::vector<std::pair<std::string, TwinsConfig>> models = {
      {"twins_pcpvt_small", {pvt_dims, pvt_heads, pvt_mlp, {3, 4, 6, 3}}},
      {"twins_pcpvt_base", {pvt_dims, pvt_heads, pvt_mlp, {3, 4, 18, 3}}},
      {"twins_pcpvt_large", {pvt_dims, pvt_heads, pvt_mlp, {3, 8, 27, 3}}},
      {"twins_svt_small", {{64, 128, 256, 512}, {2, 4, 8, 16}, svt_mlp, {2, 2, 10, 4}, 7}},
      {"twins_svt_base", {{96, 192, 384, 768}, {3, 6, 12, 24}, svt_mlp, {2, 2, 18, 2}, 7}},
      {"twins_svt_large", {{128, 256, 512, 1024}, {4, 8, 16, 32}, svt_mlp, {2, 2, 18, 2}, 7}},
  };
  register_configs<TwinsImpl>("twins", models);
}

}  // namespace twins
}  // namespace smp::timm
