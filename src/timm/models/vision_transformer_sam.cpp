// timm's Segment Anything image encoder (vision_transformer_sam.py): a channels-last ViT with
// windowed attention (padded 14x14 windows) except at a few global blocks, decomposed relative
// position terms (rel_pos_h / rel_pos_w, linearly resampled for other grids), an optional NHWC
// absolute position embedding and a conv neck before the classifier. Any input divisible by the
// patch size works.
#include <smp/timm.h>

#include <algorithm>
#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace vision_transformer_sam {
namespace {

struct SamConfig {
  int64_t img_size, embed_dim, depth, num_heads;
  std::vector<int64_t> global_attn;
  bool use_abs_pos = true;
  int64_t neck_chans = 256;  // 0 = LayerNorm2d neck
  int64_t num_classes = 0;
};
constexpr int64_t kPatch = 16, kWindow = 14;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5)); }

// [q, k, C] table rows for the offsets between q_size queries and k_size keys (equal sizes here).
torch::Tensor rel_pos_rows(int64_t size, const torch::Tensor& rel_pos) {
  const int64_t dist = 2 * size - 1;
  auto table = rel_pos;
  if (table.size(0) != dist)
    table = F::interpolate(rel_pos.t().unsqueeze(0),
                           F::InterpolateFuncOptions().size(std::vector<int64_t>{dist}).mode(torch::kLinear).align_corners(false))
                .squeeze(0)
                .t();
  auto r = torch::arange(size, torch::TensorOptions().dtype(torch::kLong).device(rel_pos.device()));
  auto idx = r.unsqueeze(1) - r.unsqueeze(0) + (size - 1);
  return table.index_select(0, idx.reshape(-1)).view({size, size, -1});
}

class SamAttentionImpl : public nn::Module {
 public:
  SamAttentionImpl(int64_t dim, int64_t heads, int64_t input_size) : heads_(heads) {
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
    const int64_t hd = dim / heads;
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size - 1, hd}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_size - 1, hd}));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, H, W, C]
    const auto b = x.size(0), h = x.size(1), w = x.size(2), n = h * w;
    auto t = qkv(x.reshape({b, n, -1})).view({b, n, 3, heads_, -1}).permute({2, 0, 3, 1, 4}).reshape({3, b * heads_, n, -1});
    auto q = t[0], k = t[1], v = t[2];
    const auto hd = q.size(-1);
    auto rq = q.reshape({b * heads_, h, w, hd});
    auto rel_h = torch::einsum("bhwc,hkc->bhwk", {rq, rel_pos_rows(h, rel_pos_h)});
    auto rel_w = torch::einsum("bhwc,wkc->bhwk", {rq, rel_pos_rows(w, rel_pos_w)});
    auto bias = (rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)).reshape({-1, n, n});
    auto attn = torch::matmul(q * std::pow(static_cast<double>(hd), -0.5), k.transpose(-2, -1)) + bias;
    auto y = torch::matmul(attn.softmax(-1), v).view({b, heads_, n, -1}).transpose(1, 2).reshape({b, n, -1});
    return proj(y).view({b, h, w, -1});
  }
  torch::Tensor rel_pos_h, rel_pos_w;

 private:
  int64_t heads_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(SamAttention);

class SamBlockImpl : public nn::Module {
 public:
  SamBlockImpl(int64_t dim, int64_t heads, int64_t window, int64_t grid, double dpr) : window_(window), dpr_(dpr) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", SamAttention(dim, heads, window > 0 ? window : grid));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * 4)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    auto y = norm1(x);
    if (window_ > 0) {
      const auto ws = window_;
      const auto ph = (ws - h % ws) % ws, pw = (ws - w % ws) % ws;
      y = F::pad(y, F::PadFuncOptions({0, 0, 0, pw, 0, ph}));
      const auto hp = h + ph, wp = w + pw;
      y = y.view({b, hp / ws, ws, wp / ws, ws, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, ws, ws, c});
      y = attn(y);
      y = y.view({b, hp / ws, wp / ws, ws, ws, c}).permute({0, 1, 3, 2, 4, 5}).reshape({b, hp, wp, c});
      y = y.slice(1, 0, h).slice(2, 0, w);
    } else {
      y = attn(y);
    }
    auto out = (x + layers::drop_path(y, dpr_, is_training())).reshape({b, h * w, c});
    out = out + layers::drop_path(mlp(norm2(out)), dpr_, is_training());
    return out.reshape({b, h, w, c});
  }

 private:
  int64_t window_;
  double dpr_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SamAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SamBlock);

class VisionTransformerSamImpl : public BackboneImpl {
 public:
  VisionTransformerSamImpl(const std::string& name, const SamConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c), grid_(c.img_size / kPatch) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(kPatch) + "); got " + std::to_string(args.output_stride()));
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, kPatch).stride(kPatch)));
    if (c.use_abs_pos) pos_embed_ = register_parameter("pos_embed", torch::zeros({1, grid_, grid_, c.embed_dim}));
    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, kPatch});
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), {c.depth}).front();
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < n_blocks; ++i) {
      const bool global = std::find(c.global_attn.begin(), c.global_attn.end(), i) != c.global_attn.end();
      blocks_->push_back(SamBlock(c.embed_dim, c.num_heads, global ? 0 : kWindow, grid_, dpr[static_cast<size_t>(i)]));
    }
    if (args.features_only()) return;
    int64_t width = c.embed_dim;
    if (c.neck_chans > 0) {
      neck_ = register_module("neck", nn::Sequential());
      neck_->push_back(nn::Conv2d(nn::Conv2dOptions(c.embed_dim, c.neck_chans, 1).bias(false)));
      neck_->push_back(layers::LayerNorm2d(c.neck_chans));
      neck_->push_back(nn::Conv2d(nn::Conv2dOptions(c.neck_chans, c.neck_chans, 3).padding(1).bias(false)));
      neck_->push_back(layers::LayerNorm2d(c.neck_chans));
      width = c.neck_chans;
    } else {
      neck_norm_ = register_module("neck", layers::LayerNorm2d(c.embed_dim));
    }
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(width, args.num_classes()));
    }
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::vector<int64_t> default_out_indices() const override {
    constexpr int64_t kLastN = 3;  // timm's default for these features: the last three blocks
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
      t = blocks_[static_cast<size_t>(i)]->as<SamBlock>()->forward(t);
      if (i == indices[out.size()]) out.push_back(t.permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = blocks_->forward(embed(x)).permute({0, 3, 1, 2});
    y = neck_ ? neck_->forward(y) : neck_norm_(y);
    return pool_and_classify(y, fc_);
  }

  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  torch::Tensor embed(const torch::Tensor& x) {
    if (x.size(2) % kPatch != 0 || x.size(3) % kPatch != 0)
      throw std::invalid_argument(model_name() + ": input height and width must be divisible by 16, got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    auto t = proj_(x).permute({0, 2, 3, 1});
    if (pos_embed_.defined()) {
      const auto h = t.size(1), w = t.size(2);
      auto pe = pos_embed_;
      if (h != grid_ || w != grid_)
        pe = layers::resample_abs_pos_embed(pos_embed_.flatten(1, 2), h, w, grid_, grid_, 0).view({1, h, w, -1});
      t = t + pe;
    }
    return t;
  }

  SamConfig cfg_;
  int64_t grid_;
  torch::Tensor pos_embed_;
  nn::Conv2d proj_{nullptr};
  nn::Sequential blocks_{nullptr}, neck_{nullptr};
  layers::LayerNorm2d neck_norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, SamConfig>> models = {
      {"samvit_base_patch16", {1024, 768, 12, 12, {2, 5, 8, 11}}},
      {"samvit_large_patch16", {1024, 1024, 24, 16, {5, 11, 17, 23}}},
      {"samvit_huge_patch16", {1024, 1280, 32, 16, {7, 15, 23, 31}}},
      {"samvit_base_patch16_224", {224, 768, 12, 12, {2, 5, 8, 11}, false, 0, 1000}},
  };
  register_configs<VisionTransformerSamImpl>("vision_transformer_sam", models, [](ModelEntry& e, const SamConfig& c) {
    e.num_classes = c.num_classes;
  });
}

}  // namespace vision_transformer_sam
}  // namespace smp::timm
