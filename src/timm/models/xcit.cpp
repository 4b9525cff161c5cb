// XCiT (Cross-Covariance Image Transformer), as timm's xcit.py builds it.
#include <smp/timm.h>

#include "timm/layers/helpers.h"
#include "timm/families.h"
#include "timm/layers/class_attn.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace xcit {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

// Fourier features of the patch grid, projected to the embedding width. Depends only on the grid
// size, so it is recomputed for every input size.
class PositionalEncodingFourierImpl : public nn::Module {
 public:
  explicit PositionalEncodingFourierImpl(int64_t dim) {
    token_projection_ = register_module("token_projection", nn::Conv2d(nn::Conv2dOptions(2 * kHidden, dim, 1)));
  }

  // (B, dim, H, W)
  torch::Tensor forward(int64_t B, int64_t H, int64_t W) {
    const auto& weight = token_projection_->weight;
    auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(weight.device());
    constexpr double kScale = 2 * 3.14159265358979323846, kEps = 1e-6;
    auto y_embed = torch::arange(1, H + 1, f32).view({1, H, 1}).expand({1, H, W});
    auto x_embed = torch::arange(1, W + 1, f32).view({1, 1, W}).expand({1, H, W});
    y_embed = y_embed / (static_cast<double>(H) + kEps) * kScale;
    x_embed = x_embed / (static_cast<double>(W) + kEps) * kScale;
    auto dim_t = torch::arange(kHidden, f32);
    dim_t = torch::pow(kTemperature, 2 * torch::div(dim_t, 2, "floor") / static_cast<double>(kHidden));
    auto fourier = [&](const torch::Tensor& embed) {
      auto p = embed.unsqueeze(-1) / dim_t;
      using torch::indexing::Slice;
      auto sin = p.index({"...", Slice(0, torch::indexing::None, 2)}).sin();
      auto cos = p.index({"...", Slice(1, torch::indexing::None, 2)}).cos();
      return torch::stack({sin, cos}, 4).flatten(3);  // interleaved sin, cos
    };
    auto pos = torch::cat({fourier(y_embed), fourier(x_embed)}, 3).permute({0, 3, 1, 2});
    pos = token_projection_(pos.to(weight.scalar_type()));
    return pos.repeat({B, 1, 1, 1});
  }

 private:
  static constexpr int64_t kHidden = 32;
  static constexpr double kTemperature = 10000.0;
  nn::Conv2d token_projection_{nullptr};
};
TORCH_MODULE(PositionalEncodingFourier);

// 3x3 stride-2 conv + BatchNorm, timm's conv3x3 helper (a Sequential: children "0" and "1").
class Conv3x3BnImpl : public nn::Module {
 public:
  Conv3x3BnImpl(int64_t in, int64_t out) {
    conv_ = register_module("0", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false)));
    bn_ = register_module("1", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn_(conv_(x)); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(Conv3x3Bn);

// Patch embedding by a stack of stride-2 convolutions (3 for patch 8, 4 for patch 16).
class ConvPatchEmbedImpl : public nn::Module {
 public:
  ConvPatchEmbedImpl(int64_t patch_size, int64_t in_chans, int64_t embed_dim) {
    std::vector<int64_t> widths;
    if (patch_size == 16)
      widths = {in_chans, embed_dim / 8, embed_dim / 4, embed_dim / 2, embed_dim};
    else if (patch_size == 8)
      widths = {in_chans, embed_dim / 4, embed_dim / 2, embed_dim};
    else
      throw std::invalid_argument("XCiT patch size must be 8 or 16, got " + std::to_string(patch_size));
    nn::Sequential proj;
    for (size_t i = 0; i + 1 < widths.size(); ++i) {
      if (i > 0) proj->push_back(nn::GELU());  // keeps timm's child indices 0, 2, 4, ...
      proj->push_back(Conv3x3Bn(widths[i], widths[i + 1]));
    }
    proj_ = register_module("proj", proj);
  }

  // (B, N, C) tokens of the (Hp, Wp) patch grid.
  std::tuple<torch::Tensor, int64_t, int64_t> forward(const torch::Tensor& x) {
    auto y = proj_->forward(x);
    const auto Hp = y.size(2), Wp = y.size(3);
    return {y.flatten(2).transpose(1, 2), Hp, Wp};
  }

 private:
  nn::Sequential proj_{nullptr};
};
TORCH_MODULE(ConvPatchEmbed);

// Local Patch Interaction: depthwise 3x3 conv, GELU, BatchNorm, depthwise 3x3 conv over the token grid.
class LPIImpl : public nn::Module {
 public:
  explicit LPIImpl(int64_t dim) {
    auto dw = [dim] { return nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim)); };
    conv1_ = register_module("conv1", dw());
    bn_ = register_module("bn", nn::BatchNorm2d(dim));
    conv2_ = register_module("conv2", dw());
  }

  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W) {
    const auto B = x.size(0), N = x.size(1), C = x.size(2);
    auto y = x.permute({0, 2, 1}).reshape({B, C, H, W});
    y = conv2_(bn_(torch::gelu(conv1_(y))));
    return y.reshape({B, C, N}).permute({0, 2, 1});
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(LPI);

// Cross-covariance attention: heads attend over channels (a C' x C' map) instead of tokens.
class XCAImpl : public nn::Module {
 public:
  XCAImpl(int64_t dim, int64_t num_heads) : num_heads_(num_heads) {
    temperature_ = register_parameter("temperature", torch::ones({num_heads, 1, 1}));
    qkv_ = register_module("qkv", nn::Linear(dim, dim * 3));
    proj_ = register_module("proj", nn::Linear(dim, dim));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto B = x.size(0), N = x.size(1), C = x.size(2);
    // (3, B, heads, C', N)
    auto qkv = qkv_(x).reshape({B, N, 3, num_heads_, C / num_heads_}).permute({2, 0, 3, 4, 1});
    auto l2 = F::NormalizeFuncOptions().dim(-1);
    auto q = F::normalize(qkv[0], l2);
    auto k = F::normalize(qkv[1], l2);
    auto attn = (torch::matmul(q, k.transpose(-2, -1)) * temperature_).softmax(-1);
    auto y = torch::matmul(attn, qkv[2]).permute({0, 3, 1, 2}).reshape({B, N, C});
    return proj_(y);
  }

 private:
  int64_t num_heads_;
  torch::Tensor temperature_;
  nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(XCA);

class XCABlockImpl : public nn::Module {
 public:
  XCABlockImpl(int64_t dim, int64_t num_heads, double eta, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    // timm's registration order (gamma3 before gamma2) fixes the state-dict order.
    gamma1_ = register_parameter("gamma1", torch::full({dim}, eta));
    gamma3_ = register_parameter("gamma3", torch::full({dim}, eta));
    gamma2_ = register_parameter("gamma2", torch::full({dim}, eta));
    norm1_ = register_module("norm1", layer_norm(dim));
    attn_ = register_module("attn", XCA(dim, num_heads));
    norm3_ = register_module("norm3", layer_norm(dim));
    local_mp_ = register_module("local_mp", LPI(dim));
    norm2_ = register_module("norm2", layer_norm(dim));
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }

  torch::Tensor forward(torch::Tensor x, int64_t H, int64_t W) {
    x = x + layers::drop_path(gamma1_ * attn_(norm1_(x)), drop_path_rate_, is_training());
    x = x + layers::drop_path(gamma3_ * local_mp_(norm3_(x), H, W), drop_path_rate_, is_training());
    return x + layers::drop_path(gamma2_ * mlp_(norm2_(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  torch::Tensor gamma1_, gamma3_, gamma2_;
  nn::LayerNorm norm1_{nullptr}, norm3_{nullptr}, norm2_{nullptr};
  XCA attn_{nullptr};
  LPI local_mp_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(XCABlock);

// CaiT-style class-attention block: only the class token is updated by attention and MLP.
// `proj_drop_rate` is the dropout after the attention's projection and in the MLP (training only).
class ClassAttentionBlockImpl : public nn::Module {
 public:
  ClassAttentionBlockImpl(int64_t dim, int64_t num_heads, double eta, bool tokens_norm, double proj_drop_rate)
      : tokens_norm_(tokens_norm), proj_drop_rate_(proj_drop_rate) {
    gamma1_ = register_parameter("gamma1", torch::full({dim}, eta));
    gamma2_ = register_parameter("gamma2", torch::full({dim}, eta));
    norm1_ = register_module("norm1", layer_norm(dim));
    attn_ = register_module("attn", layers::ClassAttn(dim, num_heads, /*qkv_bias=*/true));
    norm2_ = register_module("norm2", layer_norm(dim));
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim).drop(proj_drop_rate)));
  }

  torch::Tensor forward(torch::Tensor x) {
    using torch::indexing::Slice;
    auto x_norm1 = norm1_(x);
    auto patches = Slice(1, torch::indexing::None);
    const auto attended = layers::dropout(attn_(x_norm1), proj_drop_rate_, is_training());
    x = x + gamma1_ * torch::cat({attended, x_norm1.index({Slice(), patches})}, 1);
    if (tokens_norm_)
      x = norm2_(x);
    else
      x = torch::cat({norm2_(x.index({Slice(), Slice(0, 1)})), x.index({Slice(), patches})}, 1);
    auto cls = gamma2_ * mlp_(x.index({Slice(), Slice(0, 1)}));
    return x + torch::cat({cls, x.index({Slice(), patches})}, 1);
  }

 private:
  bool tokens_norm_;
  double proj_drop_rate_;
  torch::Tensor gamma1_, gamma2_;
  nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  layers::ClassAttn attn_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(ClassAttentionBlock);

struct XcitConfig {
  int64_t patch_size, embed_dim, depth, num_heads;
  double eta;
  bool tokens_norm;
};

constexpr int64_t kClsAttnLayers = 2;
constexpr int64_t kDefaultLastN = 3;  // timm's default out_indices for XCiT: the last three blocks

class XcitImpl : public BackboneImpl {
 public:
  XcitImpl(const std::string& name, const XcitConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " does not support output_stride=" + std::to_string(args.output_stride()) +
                                  " (XCiT has no dilated variant; use 32)");
    for (int64_t i = 0; i < cfg.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), cfg.embed_dim, cfg.patch_size});

    // features_only mirrors timm's prune_intermediate_layers: no class-attention blocks, final norm
    // or head, and no blocks after the last selected one.
    const int64_t num_blocks = layers::last_feature_index(args, cfg.depth, name) + 1;

    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, cfg.embed_dim}));
    patch_embed_ = register_module("patch_embed", ConvPatchEmbed(cfg.patch_size, args.in_chans(), cfg.embed_dim));
    pos_embed_ = register_module("pos_embed", PositionalEncodingFourier(cfg.embed_dim));
    // timm gives every XCA block the same stochastic depth rate (no per-block schedule) and the
    // class-attention blocks none.
    auto blocks = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < num_blocks; ++i) {
      blocks_.push_back(XCABlock(cfg.embed_dim, cfg.num_heads, cfg.eta, args.drop_path_rate()));
      blocks->push_back(blocks_.back());
    }
    if (args.features_only()) return;

    // timm feeds drop_rate to the class-attention blocks' projection and MLP dropout as well as the head.
    auto cls_blocks = register_module("cls_attn_blocks", nn::ModuleList());
    for (int64_t i = 0; i < kClsAttnLayers; ++i) {
      cls_attn_blocks_.push_back(
          ClassAttentionBlock(cfg.embed_dim, cfg.num_heads, cfg.eta, cfg.tokens_norm, args.drop_rate()));
      cls_blocks->push_back(cls_attn_blocks_.back());
    }
    norm_ = register_module("norm", layer_norm(cfg.embed_dim));
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(cfg.embed_dim, args.num_classes()));
  }

  std::vector<int64_t> default_out_indices() const override {
    const auto depth = static_cast<int64_t>(feature_info_.size());
    std::vector<int64_t> out;
    for (int64_t i = depth - kDefaultLastN; i < depth; ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto built = static_cast<int64_t>(blocks_.size());
    layers::check_feature_indices(indices, built, model_name());
    const auto B = x.size(0);
    auto [tokens, Hp, Wp] = embed(x);
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      tokens = blocks_[i](tokens, Hp, Wp);
      if (i == indices[out.size()]) out.push_back(tokens.reshape({B, Hp, Wp, -1}).permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto [tokens, Hp, Wp] = embed(x);
    for (auto& blk : blocks_) tokens = blk(tokens, Hp, Wp);
    tokens = torch::cat({cls_token_.expand({x.size(0), -1, -1}), tokens}, 1);
    for (auto& blk : cls_attn_blocks_) tokens = blk(tokens);
    const auto pooled = norm_(tokens).select(1, 0);  // 'token' pooling
    return classify(pooled, head_);
  }

  std::string first_conv() const override { return "patch_embed.proj.0.0"; }
  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }

 private:
  // Patch tokens plus positional encoding, and the patch grid size.
  std::tuple<torch::Tensor, int64_t, int64_t> embed(const torch::Tensor& x) {
    auto [tokens, Hp, Wp] = patch_embed_(x);
    const auto B = x.size(0);
    auto pos = pos_embed_(B, Hp, Wp).reshape({B, -1, tokens.size(1)}).permute({0, 2, 1});
    return {tokens + pos, Hp, Wp};
  }

  torch::Tensor cls_token_;
  ConvPatchEmbed patch_embed_{nullptr};
  PositionalEncodingFourier pos_embed_{nullptr};
  std::vector<XCABlock> blocks_;
  std::vector<ClassAttentionBlock> cls_attn_blocks_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear head_{nullptr};
};

}  // namespace

void register_family() {
  struct Size {
    const char* name;
    int64_t embed_dim, num_heads;
  };
  // (size, depth) pairs timm registers; depth 12 uses layer-scale init 1.0, depth 24 uses 1e-5.
  const std::vector<std::pair<Size, int64_t>> variants = {
      {{"nano", 128, 4}, 12},   {{"tiny", 192, 4}, 12},   {{"small", 384, 8}, 12}, {{"tiny", 192, 4}, 24},
      {{"small", 384, 8}, 24},  {{"medium", 512, 8}, 24}, {{"large", 768, 16}, 24},
  };
  for (const auto& [size, depth] : variants) {
    for (int64_t patch : {16, 8}) {
      for (int res : {224, 384}) {
        const std::string name = std::string("xcit_") + size.name + "_" + std::to_string(depth) + "_p" +
                                 std::to_string(patch) + "_" + std::to_string(res);
        // Only nano normalizes the class token alone in its class-attention blocks.
        const XcitConfig cfg{patch,        size.embed_dim, depth, size.num_heads, depth == 12 ? 1.0 : 1e-5,
                             std::string(size.name) != "nano"};
        ModelEntry entry;
        entry.name = name;
        entry.family = "xcit";
        entry.create = [name, cfg](const ModelArgs& args) -> Backbone {
          return std::make_shared<XcitImpl>(name, cfg, args);
        };
        register_model(std::move(entry));
      }
    }
  }
}

}  // namespace xcit
}  // namespace smp::timm
