// timm's Vision Transformer (vision_transformer.py) and DeiT (deit.py, with the distillation token):
// the variants built from the standard pre-norm block. Features are the tokens of chosen blocks as
// NCHW maps at reduction = patch size; inputs of any size divisible by the patch size work, the
// position embedding being resampled as timm's dynamic_img_size does.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention.h"
#include "timm/layers/attention_pool.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed.h"
#include "timm/layers/token_norm.h"
#include "timm/models/vision_transformer.h"

namespace smp::timm {

namespace nn = torch::nn;
using layers::TokenNormSpec;

namespace vision_transformer {
namespace {

struct VitConfig {
  int64_t patch_size, embed_dim, depth, num_heads;
  int64_t img_size = 224;
  double mlp_ratio = 4.0;
  bool qkv_bias = true, qk_norm_ = false, proj_bias = true;
  double init_values = 0.0;  // > 0: LayerScale
  bool class_token = true, no_embed_class_ = false;
  int64_t reg_tokens = 0;
  bool pre_norm_ = false, final_norm = true;
  int fc_norm_ = -1;  // -1: timm's None (on for avg pooling)
  std::string global_pool = "token";
  bool pool_include_prefix = false;
  TokenNormSpec norm_spec;
  std::string act_name = "gelu";
  bool swiglu_ = false;
  double embed_rmsnorm_eps = 0.0;  // > 0: RmsNorm after the patch projection
  bool distilled_ = false;
  std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  int64_t num_classes = 1000;
  // Hybrid models: the CNN whose map patch_embed.proj embeds (timm's HybridEmbed); unset for
  // plain patch embedding.
  std::function<HybridBackbone(const ModelArgs&)> hybrid;
  bool hybrid_proj = true;

  VitConfig(int64_t p, int64_t d, int64_t n, int64_t h) : patch_size(p), embed_dim(d), depth(n), num_heads(h) {}
  VitConfig& img(int64_t v) { img_size = v; return *this; }
  VitConfig& mlp(double v) { mlp_ratio = v; return *this; }
  VitConfig& no_qkv_bias() { qkv_bias = false; return *this; }
  VitConfig& qk_norm() { qk_norm_ = true; return *this; }
  VitConfig& no_proj_bias() { proj_bias = false; return *this; }
  VitConfig& layer_scale(double v) { init_values = v; return *this; }
  VitConfig& no_class_token() { class_token = false; return *this; }
  VitConfig& no_embed_class() { no_embed_class_ = true; return *this; }
  VitConfig& reg(int64_t v) { reg_tokens = v; return *this; }
  VitConfig& pre_norm() { pre_norm_ = true; return *this; }
  VitConfig& no_final_norm() { final_norm = false; return *this; }
  VitConfig& fc_norm(bool v) { fc_norm_ = v ? 1 : 0; return *this; }
  VitConfig& pool(const std::string& v) { global_pool = v; return *this; }
  VitConfig& pool_prefix() { pool_include_prefix = true; return *this; }
  VitConfig& norm(const std::string& kind, double eps) { norm_spec = {kind, eps}; return *this; }
  VitConfig& act(const std::string& v) { act_name = v; return *this; }
  VitConfig& swiglu() { swiglu_ = true; return *this; }
  VitConfig& embed_rmsnorm(double eps) { embed_rmsnorm_eps = eps; return *this; }
  VitConfig& distilled() { distilled_ = true; return *this; }
  VitConfig& classes(int64_t v) { num_classes = v; return *this; }
  VitConfig& stats(std::vector<double> m, std::vector<double> s) { mean = std::move(m); std = std::move(s); return *this; }
  int64_t prefix_tokens() const { return (class_token ? 1 : 0) + reg_tokens + (distilled_ ? 1 : 0); }
  bool use_fc_norm() const { return fc_norm_ < 0 ? global_pool == "avg" : fc_norm_ == 1; }
};
using V = VitConfig;

class VitBlockImpl : public nn::Module {
 public:
  VitBlockImpl(const VitConfig& c, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    norm1_ = layers::make_token_norm(c.norm_spec, c.embed_dim);
    register_module("norm1", norm1_.ptr());
    attn_ = register_module("attn", layers::Attention(layers::AttentionOptions(c.embed_dim, c.num_heads)
                                                          .qkv_bias(c.qkv_bias)
                                                          .qk_norm(c.qk_norm_)
                                                          .proj_bias(c.proj_bias)
                                                          .norm(c.norm_spec)));
    if (c.init_values > 0) ls1_ = register_module("ls1", layers::LayerScale(c.embed_dim, c.init_values));
    norm2_ = layers::make_token_norm(c.norm_spec, c.embed_dim);
    register_module("norm2", norm2_.ptr());
    const auto hidden = static_cast<int64_t>(static_cast<double>(c.embed_dim) * c.mlp_ratio);
    if (c.swiglu_)
      mlp_ = nn::AnyModule(layers::SwiGLU(c.embed_dim, hidden, c.act_name, c.proj_bias));
    else
      mlp_ = nn::AnyModule(layers::Mlp(layers::MlpOptions(c.embed_dim, hidden).act(c.act_name).bias(c.proj_bias)));
    register_module("mlp", mlp_.ptr());
    if (c.init_values > 0) ls2_ = register_module("ls2", layers::LayerScale(c.embed_dim, c.init_values));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto a = attn_(norm1_.forward(x));
    x = x + layers::drop_path(ls1_ ? ls1_(a) : a, drop_path_rate_, is_training());
    auto m = mlp_.forward(norm2_.forward(x));
    return x + layers::drop_path(ls2_ ? ls2_(m) : m, drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::AnyModule norm1_, norm2_, mlp_;
  layers::Attention attn_{nullptr};
  layers::LayerScale ls1_{nullptr}, ls2_{nullptr};
};
TORCH_MODULE(VitBlock);

class VisionTransformerImpl : public BackboneImpl {
 public:
  VisionTransformerImpl(const std::string& name, const VitConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    if (c.hybrid) hybrid_ = c.hybrid(args);
    const int64_t reduction = c.patch_size * (c.hybrid ? hybrid_.reduction : 1);
    grid_ = c.img_size / reduction;
    if (c.class_token) cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
    if (c.reg_tokens) reg_token_ = register_parameter("reg_token", torch::zeros({1, c.reg_tokens, c.embed_dim}));
    const int64_t embed_len = grid_ * grid_ + (c.no_embed_class_ ? 0 : c.prefix_tokens());
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, embed_len, c.embed_dim}));
    if (c.distilled_) dist_token_ = register_parameter("dist_token", torch::zeros({1, 1, c.embed_dim}));

    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    if (c.hybrid) patch_embed->register_module("backbone", hybrid_.module);
    if (!c.hybrid || c.hybrid_proj)
      proj_ = patch_embed->register_module(
          "proj", nn::Conv2d(nn::Conv2dOptions(c.hybrid ? hybrid_.channels : args.in_chans(), c.embed_dim, c.patch_size)
                                 .stride(c.patch_size)
                                 .bias(!c.pre_norm_)));
    if (c.embed_rmsnorm_eps > 0) {
      embed_norm_ = layers::make_token_norm({"rmsnorm", c.embed_rmsnorm_eps}, c.embed_dim);
      patch_embed->register_module("norm", embed_norm_.ptr());
    }
    if (c.pre_norm_) {
      norm_pre_ = layers::make_token_norm(c.norm_spec, c.embed_dim);
      register_module("norm_pre", norm_pre_.ptr());
    }

    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, reduction});
    // features_only mirrors timm's prune_intermediate_layers: blocks up to the last requested one,
    // no final norm, no head.
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), {c.depth}).front();
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < n_blocks; ++i) blocks_->push_back(VitBlock(c, drop_path_rates[static_cast<size_t>(i)]));
    if (args.features_only()) return;
    if (c.final_norm && !c.use_fc_norm()) {
      norm_ = layers::make_token_norm(c.norm_spec, c.embed_dim);
      register_module("norm", norm_.ptr());
    }
    if (c.global_pool == "map")
      attn_pool_ = register_module(
          "attn_pool", layers::AttentionPoolLatent(c.embed_dim, c.num_heads, c.mlp_ratio, c.norm_spec, c.act_name));
    if (c.final_norm && c.use_fc_norm()) {
      fc_norm_ = layers::make_token_norm(c.norm_spec, c.embed_dim);
      register_module("fc_norm", fc_norm_.ptr());
    }
    if (args.num_classes() > 0) {
      head_ = register_module("head", nn::Linear(c.embed_dim, args.num_classes()));
      if (c.distilled_) head_dist_ = register_module("head_dist", nn::Linear(c.embed_dim, args.num_classes()));
    }
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::vector<int64_t> default_out_indices() const override {
    constexpr int64_t kLastN = 3;  // timm's default for ViT features: the last three blocks
    std::vector<int64_t> out;
    for (int64_t i = std::max<int64_t>(0, cfg_.depth - kLastN); i < cfg_.depth; ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    return intermediates(x, indices, nullptr);
  }
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                                   std::vector<torch::Tensor>& prefix_tokens) override {
    prefix_tokens.clear();
    return intermediates(x, indices, cfg_.prefix_tokens() > 0 ? &prefix_tokens : nullptr);
  }
  int64_t num_prefix_tokens() const override { return cfg_.prefix_tokens(); }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    int64_t gh = 0, gw = 0;
    auto t = blocks_->forward(embed(x, gh, gw));
    if (!norm_.is_empty()) t = norm_.forward(t);
    if (cfg_.distilled_) {  // timm's distilled heads have no dropout
      if (!head_) return (t.select(1, 0) + t.select(1, 1)) / 2;
      return (head_(t.select(1, 0)) + head_dist_(t.select(1, 1))) / 2;
    }
    torch::Tensor pooled;
    if (attn_pool_) {
      pooled = attn_pool_(cfg_.pool_include_prefix ? t : t.slice(1, cfg_.prefix_tokens()));
    } else if (cfg_.global_pool == "token") {
      pooled = t.select(1, 0);
    } else {
      pooled = (cfg_.pool_include_prefix ? t : t.slice(1, cfg_.prefix_tokens())).mean(1);
    }
    if (!fc_norm_.is_empty()) pooled = fc_norm_.forward(pooled);
    return classify(pooled, head_);
  }

  std::string first_conv() const override { return cfg_.hybrid ? hybrid_.first_conv : "patch_embed.proj"; }

 private:
  std::vector<torch::Tensor> intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                           std::vector<torch::Tensor>* prefix_tokens) {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    const auto b = x.size(0);
    int64_t gh = 0, gw = 0;
    auto t = embed(x, gh, gw);
    std::vector<torch::Tensor> out;
    const auto prefix = cfg_.prefix_tokens();
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<VitBlock>()->forward(t);
      if (i != indices[out.size()]) continue;
      out.push_back(t.slice(1, prefix).reshape({b, gh, gw, -1}).permute({0, 3, 1, 2}).contiguous());
      if (prefix_tokens) prefix_tokens->push_back(t.slice(1, 0, prefix));
    }
    return out;
  }

  // Patch projection, prefix tokens and position embedding (resampled to this input's grid).
  torch::Tensor embed(const torch::Tensor& x, int64_t& gh, int64_t& gw) {
    const auto p = cfg_.patch_size;
    const auto& map = cfg_.hybrid ? hybrid_.forward(x) : x;
    if (map.size(2) % p != 0 || map.size(3) % p != 0)
      throw std::invalid_argument(model_name() + ": input height and width must be divisible by the patch size " +
                                  std::to_string(p * (cfg_.hybrid ? hybrid_.reduction : 1)) + ", got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    auto t = proj_ ? proj_(map) : map;
    gh = t.size(2);
    gw = t.size(3);
    t = t.flatten(2).transpose(1, 2);
    if (!embed_norm_.is_empty()) t = embed_norm_.forward(t);
    const auto b = t.size(0);
    std::vector<torch::Tensor> prefix;
    if (cls_token_.defined()) prefix.push_back(cls_token_.expand({b, -1, -1}));
    if (reg_token_.defined()) prefix.push_back(reg_token_.expand({b, -1, -1}));
    if (dist_token_.defined()) prefix.push_back(dist_token_.expand({b, -1, -1}));
    const auto pos = layers::resample_abs_pos_embed(pos_embed_, gh, gw, grid_, grid_,
                                                    cfg_.no_embed_class_ ? 0 : cfg_.prefix_tokens());
    if (cfg_.no_embed_class_) {
      t = t + pos;
      if (!prefix.empty()) {
        prefix.push_back(t);
        t = torch::cat(prefix, 1);
      }
    } else {
      if (!prefix.empty()) {
        prefix.push_back(t);
        t = torch::cat(prefix, 1);
      }
      t = t + pos;
    }
    return norm_pre_.is_empty() ? t : norm_pre_.forward(t);
  }

  VitConfig cfg_;
  HybridBackbone hybrid_;
  int64_t grid_;
  torch::Tensor cls_token_, reg_token_, pos_embed_, dist_token_;
  nn::Conv2d proj_{nullptr};
  nn::AnyModule embed_norm_, norm_pre_, norm_, fc_norm_;
  nn::Sequential blocks_{nullptr};
  nn::Linear head_{nullptr}, head_dist_{nullptr};
  layers::AttentionPoolLatent attn_pool_{nullptr};
};

}  // namespace

Backbone create_hybrid(const std::string& name, const HybridConfig& h, const ModelArgs& args,
                       const std::function<HybridBackbone(const ModelArgs&)>& make_backbone) {
  VitConfig c(h.patch_size, h.embed_dim, h.depth, h.num_heads);
  c.img(h.img_size).mlp(h.mlp_ratio);
  if (h.no_embed_class) c.no_embed_class();
  c.hybrid = make_backbone;
  c.hybrid_proj = h.proj;
  return std::make_shared<VisionTransformerImpl>(name, c, args);
}

void register_family() {
  // Generated from timm's registry: every vision_transformer.py / deit.py name built from the
  // standard block with token or average pooling.
  const std::vector<std::pair<std::string, VitConfig>> models = {
      {"aimv2_1b_patch14_224", V(14, 2048, 24, 16).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_1b_patch14_336", V(14, 2048, 24, 16).img(336).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_1b_patch14_448", V(14, 2048, 24, 16).img(448).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_3b_patch14_224", V(14, 3072, 24, 24).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_3b_patch14_336", V(14, 3072, 24, 24).img(336).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_3b_patch14_448", V(14, 3072, 24, 24).img(448).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_huge_patch14_224", V(14, 1536, 24, 12).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_huge_patch14_336", V(14, 1536, 24, 12).img(336).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_huge_patch14_448", V(14, 1536, 24, 12).img(448).mlp(2.6667).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_large_patch14_224", V(14, 1024, 24, 8).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_large_patch14_336", V(14, 1024, 24, 8).img(336).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"aimv2_large_patch14_448", V(14, 1024, 24, 8).img(448).mlp(2.75).no_qkv_bias().no_proj_bias().no_class_token().fc_norm(false).pool("avg").norm("rmsnorm", 1e-05).act("silu").swiglu().embed_rmsnorm(1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(0)},
      {"deit3_base_patch16_224", V(16, 768, 12, 12).layer_scale(1e-06).no_embed_class()},
      {"deit3_base_patch16_384", V(16, 768, 12, 12).img(384).layer_scale(1e-06).no_embed_class()},
      {"deit3_huge_patch14_224", V(14, 1280, 32, 16).layer_scale(1e-06).no_embed_class()},
      {"deit3_large_patch16_224", V(16, 1024, 24, 16).layer_scale(1e-06).no_embed_class()},
      {"deit3_large_patch16_384", V(16, 1024, 24, 16).img(384).layer_scale(1e-06).no_embed_class()},
      {"deit3_medium_patch16_224", V(16, 512, 12, 8).layer_scale(1e-06).no_embed_class()},
      {"deit3_small_patch16_224", V(16, 384, 12, 6).layer_scale(1e-06).no_embed_class()},
      {"deit3_small_patch16_384", V(16, 384, 12, 6).img(384).layer_scale(1e-06).no_embed_class()},
      {"deit_base_distilled_patch16_224", V(16, 768, 12, 12).distilled()},
      {"deit_base_distilled_patch16_384", V(16, 768, 12, 12).img(384).distilled()},
      {"deit_base_patch16_224", V(16, 768, 12, 12)},
      {"deit_base_patch16_384", V(16, 768, 12, 12).img(384)},
      {"deit_small_distilled_patch16_224", V(16, 384, 12, 6).distilled()},
      {"deit_small_patch16_224", V(16, 384, 12, 6)},
      {"deit_tiny_distilled_patch16_224", V(16, 192, 12, 3).distilled()},
      {"deit_tiny_patch16_224", V(16, 192, 12, 3)},
      {"eva_large_patch14_196", V(14, 1024, 24, 16).img(196).pool("avg").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"eva_large_patch14_336", V(14, 1024, 24, 16).img(336).pool("avg").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"flexivit_base", V(16, 768, 12, 12).img(240).no_embed_class().stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"flexivit_large", V(16, 1024, 24, 16).img(240).no_embed_class().stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"flexivit_small", V(16, 384, 12, 6).img(240).no_embed_class().stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"test_vit", V(16, 64, 6, 2).img(160).mlp(3).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"test_vit2", V(16, 64, 8, 2).img(160).mlp(3).layer_scale(1e-05).no_class_token().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"test_vit4", V(16, 96, 9, 3).img(160).mlp(3).layer_scale(1e-05).no_class_token().reg(1).pool("avg").norm("rmsnorm", 1e-6).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch14_dinov2", V(14, 768, 12, 12).img(518).layer_scale(1e-05).classes(0)},
      {"vit_base_patch14_reg1_tipsv2", V(14, 768, 12, 12).img(448).layer_scale(1.0).no_embed_class().reg(1).stats({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}).classes(0)},
      {"vit_base_patch14_reg4_dinov2", V(14, 768, 12, 12).img(518).layer_scale(1e-05).no_embed_class().reg(4).classes(0)},
      {"vit_base_patch16_224", V(16, 768, 12, 12).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch16_224_miil", V(16, 768, 12, 12).no_qkv_bias().stats({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}).classes(11221)},
      {"vit_base_patch16_384", V(16, 768, 12, 12).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch16_clip_224", V(16, 768, 12, 12).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_base_patch16_clip_384", V(16, 768, 12, 12).img(384).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_base_patch16_clip_quickgelu_224", V(16, 768, 12, 12).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_base_patch16_gap_224", V(16, 768, 12, 16).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch16_plus_240", V(16, 896, 12, 14).img(240).layer_scale(1e-05).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch16_plus_clip_240", V(16, 896, 12, 14).img(240).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(640)},
      {"vit_base_patch16_reg4_gap_256", V(16, 768, 12, 12).img(256).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch16_siglip_gap_224", V(16, 768, 12, 12).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_gap_256", V(16, 768, 12, 12).img(256).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_gap_384", V(16, 768, 12, 12).img(384).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_gap_512", V(16, 768, 12, 12).img(512).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      // Attention-pool ("map") heads.
      {"vit_base_patch32_siglip_256", V(32, 768, 12, 12).img(256).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_224", V(16, 768, 12, 12).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_256", V(16, 768, 12, 12).img(256).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_384", V(16, 768, 12, 12).img(384).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch16_siglip_512", V(16, 768, 12, 12).img(512).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch16_siglip_256", V(16, 1024, 24, 16).img(256).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch16_siglip_384", V(16, 1024, 24, 16).img(384).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch16_siglip_512", V(16, 1024, 24, 16).img(512).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_224", V(14, 1152, 27, 16).mlp(3.7362).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_378", V(14, 1152, 27, 16).img(378).mlp(3.7362).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_384", V(14, 1152, 27, 16).img(384).mlp(3.7362).no_class_token().pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_256", V(16, 1152, 27, 16).img(256).mlp(3.7362).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_384", V(16, 1152, 27, 16).img(384).mlp(3.7362).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_512", V(16, 1152, 27, 16).img(512).mlp(3.7362).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_giantopt_patch16_siglip_256", V(16, 1536, 40, 16).img(256).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_giantopt_patch16_siglip_384", V(16, 1536, 40, 16).img(384).no_class_token().pool("map").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so150m_patch16_reg4_map_256", V(16, 896, 18, 14).img(256).mlp(2.572).no_class_token().reg(4).pool("map").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch32_224", V(32, 768, 12, 12).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch32_384", V(32, 768, 12, 12).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch32_clip_224", V(32, 768, 12, 12).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_base_patch32_clip_256", V(32, 768, 12, 12).img(256).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_base_patch32_clip_384", V(32, 768, 12, 12).img(384).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_base_patch32_clip_448", V(32, 768, 12, 12).img(448).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_base_patch32_clip_quickgelu_224", V(32, 768, 12, 12).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_base_patch32_plus_256", V(32, 896, 12, 14).img(256).layer_scale(1e-05).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_base_patch32_siglip_gap_256", V(32, 768, 12, 12).img(256).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_base_patch8_224", V(8, 768, 12, 12).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_betwixt_patch16_gap_256", V(16, 640, 12, 10).img(256).no_qkv_bias().layer_scale(1e-06).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_betwixt_patch16_reg1_gap_256", V(16, 640, 12, 10).img(256).layer_scale(1e-05).no_class_token().no_embed_class().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_betwixt_patch16_reg4_gap_256", V(16, 640, 12, 10).img(256).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_betwixt_patch16_reg4_gap_384", V(16, 640, 12, 10).img(384).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_betwixt_patch32_clip_224", V(32, 640, 12, 10).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_giant_patch14_224", V(14, 1408, 40, 16).mlp(4.363636363636363).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_giant_patch14_clip_224", V(14, 1408, 40, 16).mlp(4.363636363636363).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1024)},
      {"vit_giant_patch16_gap_224", V(16, 1408, 40, 16).mlp(4.363636363636363).no_class_token().fc_norm(false).pool("avg").classes(0)},
      {"vit_giantopt_patch16_siglip_gap_256", V(16, 1536, 40, 16).img(256).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_giantopt_patch16_siglip_gap_384", V(16, 1536, 40, 16).img(384).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_gigantic_patch14_224", V(14, 1664, 48, 16).mlp(4.923076923076923).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_gigantic_patch14_clip_224", V(14, 1664, 48, 16).mlp(4.923076923076923).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1280)},
      {"vit_gigantic_patch14_clip_378", V(14, 1664, 48, 16).img(378).mlp(4.923076923076923).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1280)},
      {"vit_gigantic_patch14_clip_quickgelu_224", V(14, 1664, 48, 16).mlp(4.923076923076923).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1280)},
      {"vit_huge_patch14_224", V(14, 1280, 32, 16).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_huge_patch14_clip_224", V(14, 1280, 32, 16).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_huge_patch14_clip_336", V(14, 1280, 32, 16).img(336).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711})},
      {"vit_huge_patch14_clip_378", V(14, 1280, 32, 16).img(378).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1024)},
      {"vit_huge_patch14_clip_quickgelu_224", V(14, 1280, 32, 16).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1024)},
      {"vit_huge_patch14_clip_quickgelu_378", V(14, 1280, 32, 16).img(378).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(1024)},
      {"vit_huge_patch14_gap_224", V(14, 1280, 32, 16).no_class_token().fc_norm(false).pool("avg").classes(0)},
      {"vit_huge_patch16_gap_448", V(16, 1280, 32, 16).img(448).no_class_token().fc_norm(false).pool("avg").classes(0)},
      {"vit_intern300m_patch14_448", V(14, 1024, 24, 16).img(448).layer_scale(0.1).no_final_norm().classes(0)},
      {"vit_large_patch14_224", V(14, 1024, 24, 16).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_large_patch14_clip_224", V(14, 1024, 24, 16).pre_norm().norm("layernorm", 1e-05).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_large_patch14_clip_336", V(14, 1024, 24, 16).img(336).pre_norm().norm("layernorm", 1e-05).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_large_patch14_clip_quickgelu_224", V(14, 1024, 24, 16).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(768)},
      {"vit_large_patch14_clip_quickgelu_336", V(14, 1024, 24, 16).img(336).pre_norm().norm("layernorm", 1e-05).act("quick_gelu").stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(768)},
      {"vit_large_patch14_dinov2", V(14, 1024, 24, 16).img(518).layer_scale(1e-05).classes(0)},
      {"vit_large_patch14_reg1_tipsv2", V(14, 1024, 24, 16).img(448).layer_scale(1.0).no_embed_class().reg(1).stats({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}).classes(0)},
      {"vit_large_patch14_reg4_dinov2", V(14, 1024, 24, 16).img(518).layer_scale(1e-05).no_embed_class().reg(4).classes(0)},
      {"vit_large_patch16_224", V(16, 1024, 24, 16).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_large_patch16_384", V(16, 1024, 24, 16).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_large_patch16_siglip_gap_256", V(16, 1024, 24, 16).img(256).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch16_siglip_gap_384", V(16, 1024, 24, 16).img(384).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch16_siglip_gap_512", V(16, 1024, 24, 16).img(512).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch32_224", V(32, 1024, 24, 16).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_large_patch32_384", V(32, 1024, 24, 16).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_little_patch16_reg1_gap_256", V(16, 320, 14, 5).img(256).mlp(5.6).layer_scale(1e-05).no_class_token().no_embed_class().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_little_patch16_reg4_gap_256", V(16, 320, 14, 5).img(256).mlp(5.6).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_medium_patch16_clip_224", V(16, 512, 12, 8).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_medium_patch16_gap_240", V(16, 512, 12, 8).img(240).no_qkv_bias().layer_scale(1e-06).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(11821)},
      {"vit_medium_patch16_gap_256", V(16, 512, 12, 8).img(256).no_qkv_bias().layer_scale(1e-06).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_medium_patch16_gap_384", V(16, 512, 12, 8).img(384).no_qkv_bias().layer_scale(1e-06).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_medium_patch16_reg1_gap_256", V(16, 512, 12, 8).img(256).layer_scale(1e-05).no_class_token().no_embed_class().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_medium_patch16_reg4_gap_256", V(16, 512, 12, 8).img(256).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_medium_patch32_clip_224", V(32, 512, 12, 8).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
      {"vit_mediumd_patch16_reg4_gap_256", V(16, 512, 20, 8).img(256).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_mediumd_patch16_reg4_gap_384", V(16, 512, 20, 8).img(384).layer_scale(1e-05).no_class_token().no_embed_class().reg(4).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch14_dinov2", V(14, 384, 12, 6).img(518).layer_scale(1e-05).classes(0)},
      {"vit_small_patch14_reg4_dinov2", V(14, 384, 12, 6).img(518).layer_scale(1e-05).no_embed_class().reg(4).classes(0)},
      {"vit_small_patch16_224", V(16, 384, 12, 6).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch16_36x1_224", V(16, 384, 36, 6).layer_scale(1e-05).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch16_384", V(16, 384, 12, 6).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch32_224", V(32, 384, 12, 6).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch32_384", V(32, 384, 12, 6).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_small_patch8_224", V(8, 384, 12, 6).classes(0)},
      {"vit_so150m2_patch16_reg1_gap_256", V(16, 832, 21, 13).img(256).mlp(2.6153846153846154).no_qkv_bias().layer_scale(1e-05).no_class_token().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_so150m2_patch16_reg1_gap_384", V(16, 832, 21, 13).img(384).mlp(2.6153846153846154).no_qkv_bias().layer_scale(1e-05).no_class_token().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_so150m2_patch16_reg1_gap_448", V(16, 832, 21, 13).img(448).mlp(2.6153846153846154).no_qkv_bias().layer_scale(1e-05).no_class_token().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_so150m_patch16_reg4_gap_256", V(16, 896, 18, 14).img(256).mlp(2.572).no_class_token().reg(4).fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_so150m_patch16_reg4_gap_384", V(16, 896, 18, 14).img(384).mlp(2.572).no_class_token().reg(4).fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_so400m_patch14_reg1_tipsv2", V(14, 1152, 27, 16).img(448).mlp(3.736111111111111).layer_scale(1.0).no_embed_class().reg(1).stats({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}).classes(0)},
      {"vit_so400m_patch14_siglip_gap_224", V(14, 1152, 27, 16).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_gap_378", V(14, 1152, 27, 16).img(378).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_gap_384", V(14, 1152, 27, 16).img(384).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_gap_448", V(14, 1152, 27, 16).img(448).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch14_siglip_gap_896", V(14, 1152, 27, 16).img(896).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_gap_256", V(16, 1152, 27, 16).img(256).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_gap_384", V(16, 1152, 27, 16).img(384).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_so400m_patch16_siglip_gap_512", V(16, 1152, 27, 16).img(512).mlp(3.7362).no_class_token().fc_norm(false).pool("avg").act("gelu_tanh").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}).classes(0)},
      {"vit_tiny_patch16_224", V(16, 192, 12, 3).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_tiny_patch16_384", V(16, 192, 12, 3).img(384).stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_wee_patch16_reg1_gap_256", V(16, 256, 14, 4).img(256).mlp(5).layer_scale(1e-05).no_class_token().no_embed_class().reg(1).pool("avg").stats({0.5, 0.5, 0.5}, {0.5, 0.5, 0.5})},
      {"vit_xsmall_patch16_clip_224", V(16, 256, 10, 4).pre_norm().norm("layernorm", 1e-05).stats({0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}).classes(512)},
  };
  register_configs<VisionTransformerImpl>("vision_transformer", models, [](ModelEntry& e, const VitConfig& c) {
    e.mean = c.mean;
    e.std = c.std;
    e.num_classes = c.num_classes;
  });
}

}  // namespace vision_transformer
}  // namespace smp::timm
