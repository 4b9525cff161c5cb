// timm's ViT with relative position biases instead of an absolute embedding
// (vision_transformer_relpos.py): per-block (or one shared) RelPosMlp / RelPosBias over the patch grid,
// layer scale, pre-norm blocks or res-post-norm ("rpn") blocks. The biases are tied to the configured
// grid, so the input must have the pretraining size.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed_rel.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace vision_transformer_relpos {
namespace {

struct RelPosConfig {
  int64_t img_size = 224, patch_size = 16, embed_dim = 768, depth = 12, num_heads = 12;
  bool qkv_bias = true;
  bool class_token = false;
  bool fc_norm = false;
  std::string global_pool = "avg";
  std::string rel_pos_type = "mlp";
  int64_t rel_pos_dim = 0;  // 0 = RelPosMlp's default width (128)
  bool shared_rel_pos = false;
  bool res_post = false;  // ResPostRelPosBlock
};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

using BiasFn = std::function<torch::Tensor()>;

// Registers the configured relative position module as `name` on `parent`; returns its bias getter.
BiasFn make_rel_pos(nn::Module* parent, const std::string& name, const RelPosConfig& c) {
  const int64_t grid = c.img_size / c.patch_size, prefix = c.class_token ? 1 : 0;
  if (c.rel_pos_type.rfind("mlp", 0) == 0) {
    const std::string mode = c.rel_pos_type.find("swin") != std::string::npos ? "swin" : "cr";
    auto m = parent->register_module(
        name, layers::RelPosMlp(grid, grid, c.num_heads, c.rel_pos_dim > 0 ? c.rel_pos_dim : 128, prefix, mode));
    return [m] { return m->get_bias(); };
  }
  auto m = parent->register_module(name, layers::RelPosBias(grid, grid, c.num_heads, prefix));
  return [m] { return m->get_bias(); };
}

class RelPosAttentionImpl : public nn::Module {
 public:
  RelPosAttentionImpl(const RelPosConfig& c) : heads_(c.num_heads) {
    const auto dim = c.embed_dim;
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim * 3).bias(c.qkv_bias)));
    if (!c.shared_rel_pos) bias_ = make_rel_pos(this, "rel_pos", c);
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shared) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto attn = torch::matmul(t[0] * std::pow(static_cast<double>(hd), -0.5), t[1].transpose(-2, -1));
    if (bias_) attn = attn + bias_();
    else if (shared.defined()) attn = attn + shared;
    return proj(torch::matmul(attn.softmax(-1), t[2]).transpose(1, 2).reshape({b, n, c}));
  }

 private:
  int64_t heads_;
  BiasFn bias_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(RelPosAttention);

class RelPosBlockImpl : public nn::Module {
 public:
  RelPosBlockImpl(const RelPosConfig& c, double drop_path_rate) : res_post_(c.res_post), dpr_(drop_path_rate) {
    const auto dim = c.embed_dim;
    if (res_post_) {  // timm's registration order: attn, norm1, mlp, norm2
      attn = register_module("attn", RelPosAttention(c));
      norm1 = register_module("norm1", layer_norm(dim));
      mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * 4)));
      norm2 = register_module("norm2", layer_norm(dim));
      return;
    }
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", RelPosAttention(c));
    ls1 = register_module("ls1", layers::LayerScale(dim, 1e-6));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * 4)));
    ls2 = register_module("ls2", layers::LayerScale(dim, 1e-6));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& shared) {
    if (res_post_) {
      x = x + layers::drop_path(norm1(attn(x, shared)), dpr_, is_training());
      return x + layers::drop_path(norm2(mlp(x)), dpr_, is_training());
    }
    x = x + layers::drop_path(ls1(attn(norm1(x), shared)), dpr_, is_training());
    return x + layers::drop_path(ls2(mlp(norm2(x))), dpr_, is_training());
  }

 private:
  bool res_post_;
  double dpr_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  RelPosAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
  layers::LayerScale ls1{nullptr}, ls2{nullptr};
};
TORCH_MODULE(RelPosBlock);

class VisionTransformerRelPosImpl : public BackboneImpl {
 public:
  VisionTransformerRelPosImpl(const std::string& name, const RelPosConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c), grid_(c.img_size / c.patch_size) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, c.patch_size).stride(c.patch_size)));
    if (c.shared_rel_pos) shared_ = make_rel_pos(this, "shared_rel_pos", c);
    if (c.class_token) cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, c.patch_size});
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), {c.depth}).front();
    blocks_ = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < n_blocks; ++i) blocks_->push_back(RelPosBlock(c, dpr[static_cast<size_t>(i)]));
    if (args.features_only()) return;
    if (c.fc_norm) fc_norm_ = register_module("fc_norm", layer_norm(c.embed_dim));
    else norm_ = register_module("norm", layer_norm(c.embed_dim));
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.embed_dim, args.num_classes()));
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
    return intermediates(x, indices, nullptr);
  }
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                                   std::vector<torch::Tensor>& prefix_tokens) override {
    prefix_tokens.clear();
    return intermediates(x, indices, &prefix_tokens);
  }
  int64_t num_prefix_tokens() const override { return cfg_.class_token ? 1 : 0; }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto t = embed(x);
    const auto shared = shared_ ? shared_() : torch::Tensor();
    for (const auto& block : *blocks_) t = block->as<RelPosBlock>()->forward(t, shared);
    if (norm_) t = norm_(t);
    const int64_t p = num_prefix_tokens();
    auto pooled = cfg_.global_pool == "avg" ? t.slice(1, p).mean(1) : t.select(1, 0);
    if (fc_norm_) pooled = fc_norm_(pooled);
    return classify(pooled, head_);
  }

  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  std::vector<torch::Tensor> intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                           std::vector<torch::Tensor>* prefix_tokens) {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    auto t = embed(x);
    const auto shared = shared_ ? shared_() : torch::Tensor();
    const int64_t p = num_prefix_tokens();
    std::vector<torch::Tensor> out;
    const auto b = x.size(0);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<RelPosBlock>()->forward(t, shared);
      if (i != indices[out.size()]) continue;
      out.push_back(t.slice(1, p).reshape({b, grid_, grid_, -1}).permute({0, 3, 1, 2}).contiguous());
      if (prefix_tokens && p > 0) prefix_tokens->push_back(t.slice(1, 0, p));
    }
    return out;
  }

  torch::Tensor embed(const torch::Tensor& x) {
    if (x.size(2) != cfg_.img_size || x.size(3) != cfg_.img_size)
      throw std::invalid_argument(model_name() + ": its relative position biases need a " +
                                  std::to_string(cfg_.img_size) + "x" + std::to_string(cfg_.img_size) + " input, got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    auto t = proj_(x).flatten(2).transpose(1, 2);
    if (cls_token_.defined()) t = torch::cat({cls_token_.expand({x.size(0), -1, -1}), t}, 1);
    return t;
  }

  RelPosConfig cfg_;
  int64_t grid_;
  BiasFn shared_;
  torch::Tensor cls_token_;
  nn::Conv2d proj_{nullptr};
  nn::ModuleList blocks_{nullptr};
  nn::LayerNorm norm_{nullptr}, fc_norm_{nullptr};
  nn::Linear head_{nullptr};
};

RelPosConfig make(int64_t patch, int64_t dim, int64_t heads, const std::function<void(RelPosConfig&)>& edit = {}) {
  RelPosConfig c;
  c.patch_size = patch, c.embed_dim = dim, c.num_heads = heads, c.qkv_bias = false;
  if (edit) edit(c);
  return c;
}

}  // namespace

void register_family() {
  auto fcn = [](RelPosConfig& c) { c.fc_norm = true; };
  auto rpn = [](RelPosConfig& c) { c.res_post = true; };
  const std::vector<std::pair<std::string, RelPosConfig>> models = {
      {"vit_relpos_base_patch32_plus_rpn_256", make(32, 896, 14, [](RelPosConfig& c) {
         c.qkv_bias = true, c.res_post = true, c.img_size = 256;
       })},
      {"vit_relpos_base_patch16_plus_240", make(16, 896, 14, [](RelPosConfig& c) { c.qkv_bias = true, c.img_size = 240; })},
      {"vit_relpos_small_patch16_224", make(16, 384, 6, fcn)},
      {"vit_relpos_medium_patch16_224", make(16, 512, 8, fcn)},
      {"vit_relpos_base_patch16_224", make(16, 768, 12, fcn)},
      {"vit_srelpos_small_patch16_224", make(16, 384, 6, [](RelPosConfig& c) { c.rel_pos_dim = 384, c.shared_rel_pos = true; })},
      {"vit_srelpos_medium_patch16_224", make(16, 512, 8, [](RelPosConfig& c) { c.rel_pos_dim = 512, c.shared_rel_pos = true; })},
      {"vit_relpos_medium_patch16_cls_224", make(16, 512, 8, [](RelPosConfig& c) {
         c.rel_pos_dim = 256, c.class_token = true, c.global_pool = "token";
       })},
      {"vit_relpos_base_patch16_cls_224", make(16, 768, 12, [](RelPosConfig& c) { c.class_token = true, c.global_pool = "token"; })},
      {"vit_relpos_base_patch16_clsgap_224", make(16, 768, 12, [](RelPosConfig& c) { c.fc_norm = true, c.class_token = true; })},
      {"vit_relpos_small_patch16_rpn_224", make(16, 384, 6, rpn)},
      {"vit_relpos_medium_patch16_rpn_224", make(16, 512, 8, rpn)},
      {"vit_relpos_base_patch16_rpn_224", make(16, 768, 12, rpn)},
  };
  register_configs<VisionTransformerRelPosImpl>("vision_transformer_relpos", models,
                                                [](ModelEntry& e, const RelPosConfig&) { e.mean = e.std = {0.5, 0.5, 0.5}; });
}

}  // namespace vision_transformer_relpos
}  // namespace smp::timm
