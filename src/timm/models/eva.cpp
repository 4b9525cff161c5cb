// timm's EVA / EVA-02 (eva.py): ViT blocks with fused or separate q/k/v projections, SwiGLU or GLU
// MLPs and 2-D rotary position embeddings. Like the ViT port, any input size divisible by the patch
// works: the absolute position embedding is resampled and the rotary tables are built for the grid.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed.h"
#include "timm/layers/rope.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace eva {
namespace {

enum class EvaMlp { kMlp, kGlu, kSwiGLU };

struct EvaConfig {
  int64_t img_size, patch_size, embed_dim, depth, num_heads;
  double mlp_ratio = 4.0;
  bool qkv_fused = true;
  EvaMlp mlp = EvaMlp::kMlp;
  bool scale_attn_inner = false;
  bool rope = false;  // 2-D RoPE with a 16 x 16 reference grid
  std::string global_pool = "avg";
  int64_t num_classes = 1000;
  // RoPE-ViT variants (timm's attn_type 'rope'): one qkv Linear with its own bias, layer scale
  // (gamma_1/gamma_2), xy-ordered rotary grid at temperature 100, optional patch-only abs. embedding.
  bool rope_vit = false;
  double init_values = 0;      // 0 = no layer scale
  bool use_abs_pos = true;
  bool no_embed_class = false;  // the absolute embedding covers the patch tokens only
  bool class_token = true;
  bool rope_mixed = false;  // learned per-block, per-head rotary frequencies ("rope.freqs")
  int64_t num_reg_tokens = 0;  // register tokens ("reg_token"), after the class token
  bool qkv_bias = true;        // fused qkv: q_bias / v_bias parameters
  int64_t prefix() const { return (class_token ? 1 : 0) + num_reg_tokens; }
  std::vector<double> mean = {0.48145466, 0.4578275, 0.40821073}, std = {0.26862954, 0.26130258, 0.27577711};
};

constexpr int64_t kRopeRef = 16;
nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

class EvaAttentionImpl : public nn::Module {
 public:
  EvaAttentionImpl(int64_t dim, const EvaConfig& c) : heads_(c.num_heads), prefix_(c.prefix()), fused_(c.qkv_fused) {
    if (c.rope_vit) {
      qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    } else if (fused_) {
      qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim * 3).bias(false)));
      if (c.qkv_bias) {
        q_bias = register_parameter("q_bias", torch::zeros({dim}));
        v_bias = register_parameter("v_bias", torch::zeros({dim}));
      }
    } else {
      q_proj = register_module("q_proj", nn::Linear(dim, dim));
      k_proj = register_module("k_proj", nn::Linear(nn::LinearOptions(dim, dim).bias(false)));
      v_proj = register_module("v_proj", nn::Linear(dim, dim));
    }
    if (c.scale_attn_inner) norm = register_module("norm", layer_norm(dim));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  // x [B, N, C]; rope: [N - 1, 2 * head_dim] for the patch tokens, or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rope) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    torch::Tensor q, k, v;
    if (!q_bias.defined() && qkv) {
      auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
      q = t[0], k = t[1], v = t[2];
    } else if (fused_) {
      auto bias = torch::cat({q_bias, torch::zeros_like(q_bias), v_bias});
      auto t = torch::nn::functional::linear(x, qkv->weight, bias).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
      q = t[0], k = t[1], v = t[2];
    } else {
      q = q_proj(x).reshape({b, n, heads_, hd}).transpose(1, 2);
      k = k_proj(x).reshape({b, n, heads_, hd}).transpose(1, 2);
      v = v_proj(x).reshape({b, n, heads_, hd}).transpose(1, 2);
    }
    if (rope.defined()) {  // class and register tokens are not rotated
      q = torch::cat({q.slice(2, 0, prefix_), layers::apply_rope_cat(q.slice(2, prefix_), rope)}, 2);
      k = torch::cat({k.slice(2, 0, prefix_), layers::apply_rope_cat(k.slice(2, prefix_), rope)}, 2);
    }
    auto attn = torch::matmul(q * std::pow(static_cast<double>(hd), -0.5), k.transpose(-2, -1)).softmax(-1);
    auto y = torch::matmul(attn, v).transpose(1, 2).reshape({b, n, c});
    if (norm) y = norm(y);
    return proj(y);
  }
  torch::Tensor q_bias, v_bias;

 private:
  int64_t heads_, prefix_;
  bool fused_;
  nn::Linear qkv{nullptr}, q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, proj{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(EvaAttention);

class EvaBlockImpl : public nn::Module {
 public:
  EvaBlockImpl(const EvaConfig& c, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    const auto dim = c.embed_dim;
    if (c.init_values > 0) {
      gamma_1 = register_parameter("gamma_1", torch::full({dim}, c.init_values));
      gamma_2 = register_parameter("gamma_2", torch::full({dim}, c.init_values));
    }
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", EvaAttention(dim, c));
    norm2 = register_module("norm2", layer_norm(dim));
    const auto hidden = static_cast<int64_t>(static_cast<double>(dim) * c.mlp_ratio);
    switch (c.mlp) {
      case EvaMlp::kMlp: mlp = nn::AnyModule(layers::Mlp(layers::MlpOptions(dim, hidden))); break;
      case EvaMlp::kGlu: mlp = nn::AnyModule(layers::GluMlp(dim, hidden)); break;
      case EvaMlp::kSwiGLU: mlp = nn::AnyModule(layers::SwiGLU(dim, hidden, "silu", true, true)); break;
    }
    register_module("mlp", mlp.ptr());
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& rope) {
    auto a = attn(norm1(x), rope);
    if (gamma_1.defined()) a = gamma_1 * a;
    x = x + layers::drop_path(a, drop_path_rate_, is_training());
    auto m = mlp.forward<torch::Tensor>(norm2(x));
    if (gamma_2.defined()) m = gamma_2 * m;
    return x + layers::drop_path(m, drop_path_rate_, is_training());
  }
  torch::Tensor gamma_1, gamma_2;

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  EvaAttention attn{nullptr};
  nn::AnyModule mlp;
};
TORCH_MODULE(EvaBlock);

class EvaImpl : public BackboneImpl {
 public:
  EvaImpl(const std::string& name, const EvaConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c), grid_(c.img_size / c.patch_size) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    if (c.class_token) cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
    if (c.num_reg_tokens > 0)
      reg_token_ = register_parameter("reg_token", torch::zeros({1, c.num_reg_tokens, c.embed_dim}));
    if (c.use_abs_pos)
      pos_embed_ = register_parameter("pos_embed",
                                      torch::zeros({1, grid_ * grid_ + (c.no_embed_class ? 0 : c.prefix()), c.embed_dim}));
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, c.patch_size).stride(c.patch_size)));
    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, c.patch_size});
    if (c.rope_mixed) {
      auto rope = register_module("rope", std::make_shared<nn::Module>());
      rope_freqs_ = rope->register_parameter(
          "freqs", torch::zeros({2, c.depth, c.num_heads, c.embed_dim / c.num_heads / 2}));
    }
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), {c.depth}).front();
    blocks_ = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < n_blocks; ++i) blocks_->push_back(EvaBlock(c, drop_path_rates[static_cast<size_t>(i)]));
    if (args.features_only()) return;
    if (c.global_pool == "avg")
      fc_norm_ = register_module("fc_norm", layer_norm(c.embed_dim));
    else
      norm_ = register_module("norm", layer_norm(c.embed_dim));
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.embed_dim, args.num_classes()));
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::vector<int64_t> default_out_indices() const override {
    constexpr int64_t kLastN = 3;  // timm's default for EVA features: the last three blocks
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
  int64_t num_prefix_tokens() const override { return cfg_.prefix(); }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    int64_t gh = 0, gw = 0;
    torch::Tensor rope;
    auto t = embed(x, gh, gw, rope);
    for (size_t i = 0; i < blocks_->size(); ++i) t = blocks_[i]->as<EvaBlock>()->forward(t, block_rope(rope, i));
    torch::Tensor pooled = norm_ ? norm_(t).select(1, 0) : fc_norm_(t.slice(1, cfg_.prefix()).mean(1));
    return classify(pooled, head_);
  }

  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  std::vector<torch::Tensor> intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                           std::vector<torch::Tensor>* prefix_tokens) {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    int64_t gh = 0, gw = 0;
    torch::Tensor rope;
    auto t = embed(x, gh, gw, rope);
    std::vector<torch::Tensor> out;
    const auto b = x.size(0);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<EvaBlock>()->forward(t, block_rope(rope, static_cast<size_t>(i)));
      if (i != indices[out.size()]) continue;
      const auto p = cfg_.prefix();
      out.push_back(t.slice(1, p).reshape({b, gh, gw, -1}).permute({0, 3, 1, 2}).contiguous());
      if (prefix_tokens && p > 0) prefix_tokens->push_back(t.slice(1, 0, p));
    }
    return out;
  }

  torch::Tensor embed(const torch::Tensor& x, int64_t& gh, int64_t& gw, torch::Tensor& rope) {
    const auto p = cfg_.patch_size;
    if (x.size(2) % p != 0 || x.size(3) % p != 0)
      throw std::invalid_argument(model_name() + ": input height and width must be divisible by the patch size " +
                                  std::to_string(p) + ", got " + std::to_string(x.size(2)) + "x" +
                                  std::to_string(x.size(3)));
    auto t = proj_(x);
    gh = t.size(2);
    gw = t.size(3);
    t = t.flatten(2).transpose(1, 2);
    if (pos_embed_.defined() && cfg_.no_embed_class)
      t = t + layers::resample_abs_pos_embed(pos_embed_, gh, gw, grid_, grid_, 0);
    std::vector<torch::Tensor> parts;
    if (cls_token_.defined()) parts.push_back(cls_token_.expand({x.size(0), -1, -1}));
    if (reg_token_.defined()) parts.push_back(reg_token_.expand({x.size(0), -1, -1}));
    if (!parts.empty()) {
      parts.push_back(t);
      t = torch::cat(parts, 1);
    }
    if (pos_embed_.defined() && !cfg_.no_embed_class)
      t = t + layers::resample_abs_pos_embed(pos_embed_, gh, gw, grid_, grid_, cfg_.prefix());
    const int64_t head_dim = cfg_.embed_dim / cfg_.num_heads;
    if (cfg_.rope_mixed) {
      // [depth, heads, N, 2 * head_dim]: each block's learned frequencies on the xy grid.
      auto opts = torch::TensorOptions().dtype(torch::kFloat).device(t.device());
      auto grid = torch::meshgrid({torch::arange(gh, opts), torch::arange(gw, opts)}, "ij");
      auto tx = grid[1].flatten().unsqueeze(-1), ty = grid[0].flatten().unsqueeze(-1);  // column, row
      auto f = rope_freqs_.to(torch::kFloat);
      auto angle = torch::matmul(tx, f[0].unsqueeze(-2)) + torch::matmul(ty, f[1].unsqueeze(-2));
      rope = torch::cat({angle.sin().repeat_interleave(2, -1), angle.cos().repeat_interleave(2, -1)}, -1)
                 .to(t.scalar_type());
    } else if (cfg_.rope_vit) {
      // xy grid order: build the table on the transposed (w, h) grid, whose coordinates come out as
      // (column, row), then reorder its rows to the row-major token order.
      rope = layers::rope_cat_embed(head_dim, gw, gh, 0, 0, 100.0).view({gw, gh, -1}).transpose(0, 1).reshape({gh * gw, -1});
      rope = rope.to(t.device(), t.scalar_type());
    } else if (cfg_.rope) {
      rope = layers::rope_cat_embed(head_dim, gh, gw, kRopeRef, kRopeRef).to(t.device(), t.scalar_type());
    }
    return t;
  }

  EvaConfig cfg_;
  int64_t grid_;
  torch::Tensor cls_token_, reg_token_, pos_embed_, rope_freqs_;
  // Mixed RoPE holds one table per block; the other forms share theirs.
  torch::Tensor block_rope(const torch::Tensor& rope, size_t i) const {
    return rope.defined() && rope.dim() == 4 ? rope[static_cast<int64_t>(i)] : rope;
  }
  nn::Conv2d proj_{nullptr};
  nn::ModuleList blocks_{nullptr};
  nn::LayerNorm norm_{nullptr}, fc_norm_{nullptr};
  nn::Linear head_{nullptr};
};

}  // namespace

void register_family() {
  constexpr double kSwiRatio = 4.0 * 2.0 / 3.0;
  auto eva02 = [&](int64_t img, int64_t patch, int64_t dim, int64_t depth, int64_t heads, bool base, int64_t classes,
                   bool clip = false) {
    EvaConfig c{img, patch, dim, depth, heads, kSwiRatio};
    c.qkv_fused = !base;
    c.mlp = base ? EvaMlp::kSwiGLU : EvaMlp::kGlu;
    c.scale_attn_inner = clip;
    c.rope = true;
    c.global_pool = clip ? "token" : "avg";
    c.num_classes = classes;
    return c;
  };
  auto giant = [](int64_t img, int64_t classes, bool clip = false) {
    EvaConfig c{img, 14, 1408, 40, 16, 4.3636363636363633};
    c.global_pool = clip ? "token" : "avg";
    c.num_classes = classes;
    return c;
  };
  auto imagenet_stats = [](EvaConfig c) {
    c.mean = {0.485, 0.456, 0.406};
    c.std = {0.229, 0.224, 0.225};
    return c;
  };
  auto rope_vit = [](int64_t dim, int64_t heads, bool ape, bool mixed = false) {
    EvaConfig c{224, 16, dim, dim == 1024 ? 24 : 12, heads, 4.0};
    c.rope_vit = true;
    c.rope_mixed = mixed;
    c.init_values = 1e-5;
    c.global_pool = "token";
    c.use_abs_pos = ape;
    c.no_embed_class = ape;
    c.mean = {0.485, 0.456, 0.406};
    c.std = {0.229, 0.224, 0.225};
    return c;
  };
  // timm's "sbb" register ViTs: fused qkv, layer scale, register tokens instead of a class token,
  // average pooling and EVA's rotary embedding at a 16 x 16 reference grid.
  auto reg_gap = [](int64_t dim, int64_t depth, int64_t heads, int64_t regs, bool qkv_bias, bool half_stats) {
    EvaConfig c{256, 16, dim, depth, heads, 4.0};
    c.qkv_bias = qkv_bias;
    c.init_values = 1e-5;
    c.class_token = false;
    c.num_reg_tokens = regs;
    c.rope = true;
    c.use_abs_pos = false;
    if (half_stats) c.mean = c.std = {0.5, 0.5, 0.5};
    return c;
  };
  const std::vector<std::pair<std::string, EvaConfig>> models = {
      {"eva02_tiny_patch14_224", eva02(224, 14, 192, 12, 3, false, 0)},
      {"eva02_tiny_patch14_336", eva02(336, 14, 192, 12, 3, false, 1000)},
      {"eva02_small_patch14_224", eva02(224, 14, 384, 12, 6, false, 0)},
      {"eva02_small_patch14_336", eva02(336, 14, 384, 12, 6, false, 1000)},
      {"eva02_base_patch14_224", eva02(224, 14, 768, 12, 12, true, 0)},
      {"eva02_base_patch14_448", eva02(448, 14, 768, 12, 12, true, 1000)},
      {"eva02_large_patch14_224", eva02(224, 14, 1024, 24, 16, true, 0)},
      {"eva02_large_patch14_448", eva02(448, 14, 1024, 24, 16, true, 1000)},
      {"eva02_base_patch16_clip_224", eva02(224, 16, 768, 12, 12, true, 512, true)},
      {"eva02_large_patch14_clip_224", eva02(224, 14, 1024, 24, 16, true, 768, true)},
      {"eva02_large_patch14_clip_336", eva02(336, 14, 1024, 24, 16, true, 768, true)},
      {"eva_giant_patch14_224", giant(224, 1000)},
      {"eva_giant_patch14_336", giant(336, 1000)},
      {"eva_giant_patch14_560", imagenet_stats(giant(560, 1000))},
      {"eva_giant_patch14_clip_224", giant(224, 1024, true)},
      {"vit_small_patch16_rope_224", rope_vit(384, 6, false)},
      {"vit_medium_patch16_rope_reg1_gap_256", reg_gap(512, 12, 8, 1, true, true)},
      {"vit_mediumd_patch16_rope_reg1_gap_256", reg_gap(512, 20, 8, 1, false, true)},
      {"vit_betwixt_patch16_rope_reg4_gap_256", reg_gap(640, 12, 10, 4, true, false)},
      {"vit_base_patch16_rope_reg1_gap_256", reg_gap(768, 12, 12, 1, true, true)},
      {"vit_base_patch16_rope_224", rope_vit(768, 12, false)},
      {"vit_large_patch16_rope_224", rope_vit(1024, 16, false)},
      {"vit_small_patch16_rope_ape_224", rope_vit(384, 6, true)},
      {"vit_base_patch16_rope_ape_224", rope_vit(768, 12, true)},
      {"vit_large_patch16_rope_ape_224", rope_vit(1024, 16, true)},
      {"vit_small_patch16_rope_mixed_224", rope_vit(384, 6, false, true)},
      {"vit_base_patch16_rope_mixed_224", rope_vit(768, 12, false, true)},
      {"vit_large_patch16_rope_mixed_224", rope_vit(1024, 16, false, true)},
      {"vit_small_patch16_rope_mixed_ape_224", rope_vit(384, 6, true, true)},
      {"vit_base_patch16_rope_mixed_ape_224", rope_vit(768, 12, true, true)},
      {"vit_large_patch16_rope_mixed_ape_224", rope_vit(1024, 16, true, true)},
  };
  register_configs<EvaImpl>("eva", models, [](ModelEntry& e, const EvaConfig& c) {
    e.mean = c.mean;
    e.std = c.std;
    e.num_classes = c.num_classes;
  });
}

}  // namespace eva
}  // namespace smp::timm
