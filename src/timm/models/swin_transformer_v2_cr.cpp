// timm's Swin Transformer V2 "cr" variant (swin_transformer_v2_cr.py): post-norm blocks, cosine
// attention with a per-head temperature and a relative position bias from an MLP over log-spaced
// offsets; optional extra norms on the main branch. The window is the pretraining grid / 8. NHWC
// inside, features returned NCHW. The shift mask is made for the actual input, so other input sizes
// work (timm's strict_img_size=False behaviour).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/window.h"
#include "timm/models/swin_frame.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace swin_transformer_v2_cr {
namespace {

struct SwinV2CrConfig {
  int64_t embed_dim;
  std::vector<int64_t> depths, num_heads;
  int64_t img_size = 224;
  bool extra_norm_stage = false;  // a norm after each stage's last block (always after the last stage)
  int64_t extra_norm_period = 0;  // a norm after every n-th block
};
constexpr int64_t kPatch = 4;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim})); }

class WindowAttentionImpl : public nn::Module {
 public:
  WindowAttentionImpl(int64_t dim, int64_t heads, int64_t window) : heads_(heads), area_(window * window) {
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
    meta_mlp = register_module("meta_mlp", layers::Mlp(layers::MlpOptions(2, 384).out_features(heads).act("relu")));
    logit_scale = register_parameter("logit_scale", torch::full({heads}, std::log(10.0)));
    // Pairwise offsets of the window's tokens, sign(d) * log(1 + |d|) (timm's non-persistent buffer).
    auto r = torch::arange(window, torch::kFloat32);
    auto coords = torch::stack(torch::meshgrid({r, r}, "ij")).flatten(1);
    auto rel = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).reshape({-1, 2});
    coords_log_ = torch::sign(rel) * torch::log1p(rel.abs());
  }

  // x: [nW * B, N, C]; mask: [nW, N, N] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    auto t = qkv(x).view({b, n, 3, heads_, c / heads_}).permute({2, 0, 3, 1, 4});
    const auto opts = F::NormalizeFuncOptions().dim(-1);
    auto attn = torch::matmul(F::normalize(t[0], opts), F::normalize(t[1], opts).transpose(-2, -1));
    attn = attn * torch::clamp_max(logit_scale.view({1, heads_, 1, 1}), std::log(100.0)).exp();
    auto bias = meta_mlp(coords_log_.to(x.device(), x.scalar_type())).transpose(1, 0).reshape({heads_, area_, area_});
    attn = attn + bias.unsqueeze(0);
    if (mask.defined()) {
      const auto nw = mask.size(0);
      attn = (attn.view({-1, nw, heads_, n, n}) + mask.unsqueeze(1).unsqueeze(0)).view({-1, heads_, n, n});
    }
    return proj(torch::matmul(attn.softmax(-1), t[2]).transpose(1, 2).reshape({b, n, c}));
  }

  torch::Tensor logit_scale;

 private:
  int64_t heads_, area_;
  torch::Tensor coords_log_;
  nn::Linear qkv{nullptr}, proj{nullptr};
  layers::Mlp meta_mlp{nullptr};
};
TORCH_MODULE(WindowAttention);

class SwinV2CrBlockImpl : public nn::Module {
 public:
  // `resolution`: the stage's grid at the pretraining size, which fixes window and shift as timm does.
  SwinV2CrBlockImpl(int64_t dim, int64_t heads, int64_t window, bool shifted, int64_t resolution, bool extra_norm,
                    double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    window_ = resolution <= window ? resolution : window;
    shift_ = (!shifted || resolution <= window_) ? 0 : window / 2;
    attn = register_module("attn", WindowAttention(dim, heads, window_));
    norm1 = register_module("norm1", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
    norm2 = register_module("norm2", layer_norm(dim));
    if (extra_norm) norm3 = register_module("norm3", layer_norm(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC; post-norm residuals
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    auto windowed = layers::shifted_window_attention(
        x, window_, window_, shift_, shift_,
        [this](const torch::Tensor& windows, const torch::Tensor& mask) { return attn(windows, mask); });
    auto y = x + layers::drop_path(norm1(windowed), drop_path_rate_, is_training());
    auto flat = y.reshape({b, -1, c});
    flat = flat + layers::drop_path(norm2(mlp(flat)), drop_path_rate_, is_training());
    if (norm3) flat = norm3(flat);
    return flat.reshape({b, h, w, c});
  }

 private:
  double drop_path_rate_;
  int64_t window_, shift_;
  WindowAttention attn{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SwinV2CrBlock);

// 2x2 patches concatenated, normalised, then projected to twice the width.
class PatchMergingImpl : public nn::Module {
 public:
  explicit PatchMergingImpl(int64_t dim) {
    norm = register_module("norm", layer_norm(4 * dim));
    reduction = register_module("reduction", nn::Linear(nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC, odd sizes padded
    auto y = (x.size(1) % 2 || x.size(2) % 2) ? F::pad(x, F::PadFuncOptions({0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2})) : x;
    const auto b = y.size(0), h = y.size(1), w = y.size(2), c = y.size(3);
    y = y.reshape({b, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
    return reduction(norm(y));
  }

 private:
  nn::LayerNorm norm{nullptr};
  nn::Linear reduction{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinV2CrStageImpl : public nn::Module {
 public:
  SwinV2CrStageImpl(int64_t in, bool downscale, const std::vector<double>& drop_path_rates, int64_t heads,
                    int64_t window, int64_t resolution, bool extra_norm_stage, int64_t extra_norm_period) {
    int64_t dim = in;
    if (downscale) {
      downsample = register_module("downsample", PatchMerging(in));
      dim *= 2;
    }
    blocks = register_module("blocks", nn::Sequential());
    const auto depth = static_cast<int64_t>(drop_path_rates.size());
    for (int64_t i = 0; i < depth; ++i) {
      const bool extra = (extra_norm_period && (i + 1) % extra_norm_period == 0) || (extra_norm_stage && i + 1 == depth);
      blocks->push_back(SwinV2CrBlock(dim, heads, window, i % 2 == 1, resolution, extra,
                                      drop_path_rates[static_cast<size_t>(i)]));
    }
  }
  torch::Tensor forward(torch::Tensor x) {  // NHWC
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  PatchMerging downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(SwinV2CrStage);

class SwinTransformerV2CrImpl : public swin_frame::SwinFrameImpl {
 public:
  SwinTransformerV2CrImpl(const std::string& name, const SwinV2CrConfig& c, const ModelArgs& args)
      : SwinFrameImpl(name, args, {"stages", c.embed_dim, c.depths, c.img_size, false},
                      [&c](const swin_frame::StageArgs& s) {
                        const auto u = static_cast<size_t>(s.index);
                        const auto n = static_cast<int64_t>(c.depths.size());
                        const int64_t window = c.img_size / kPatch / 8;  // timm's window_ratio
                        return nn::AnyModule(SwinV2CrStage(s.in, s.index > 0, s.drop_path_rates, c.num_heads[u],
                                                           window, s.grid, c.extra_norm_stage || s.index + 1 == n,
                                                           c.extra_norm_period));
                      }) {}
};

}  // namespace

void register_family() {
  const std::vector<int64_t> tiny{2, 2, 6, 2}, deep{2, 2, 18, 2}, giant{2, 2, 42, 2}, h3{3, 6, 12, 24},
      h4{4, 8, 16, 32}, h6{6, 12, 24, 48};
  const std::vector<std::pair<std::string, SwinV2CrConfig>> models = {
      {"swinv2_cr_tiny_384", {96, tiny, h3, 384}},
      {"swinv2_cr_tiny_224", {96, tiny, h3, 224}},
      {"swinv2_cr_tiny_ns_224", {96, tiny, h3, 224, true}},
      {"swinv2_cr_small_384", {96, deep, h3, 384}},
      {"swinv2_cr_small_224", {96, deep, h3, 224}},
      {"swinv2_cr_small_ns_224", {96, deep, h3, 224, true}},
      {"swinv2_cr_small_ns_256", {96, deep, h3, 256, true}},
      {"swinv2_cr_base_384", {128, deep, h4, 384}},
      {"swinv2_cr_base_224", {128, deep, h4, 224}},
      {"swinv2_cr_base_ns_224", {128, deep, h4, 224, true}},
      {"swinv2_cr_large_384", {192, deep, h6, 384}},
      {"swinv2_cr_large_224", {192, deep, h6, 224}},
      {"swinv2_cr_huge_384", {352, deep, {11, 22, 44, 88}, 384, false, 6}},
      {"swinv2_cr_huge_224", {352, deep, {8, 16, 32, 64}, 224, false, 6}},
      {"swinv2_cr_giant_384", {512, giant, {16, 32, 64, 128}, 384, false, 6}},
      {"swinv2_cr_giant_224", {512, giant, {16, 32, 64, 128}, 224, false, 6}},
  };
  register_configs<SwinTransformerV2CrImpl>("swin_transformer_v2_cr", models);
}

}  // namespace swin_transformer_v2_cr
}  // namespace smp::timm
