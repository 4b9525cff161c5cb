// CaiT (timm's cait.py): a ViT of LayerScale blocks with talking-heads attention over the patch
// tokens only, then class-attention blocks that read them into the class token. Features are the
// patch tokens of chosen blocks as NCHW maps (reduction = patch size).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/class_attn.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed.h"
#include "timm/layers/token_norm.h"

namespace smp::timm {

namespace cait {
namespace {

namespace nn = torch::nn;

struct CaitConfig {
  int64_t embed_dim, depth, num_heads;
  double init_values;
  int64_t img_size = 224;
  int64_t patch_size = 16;
  int64_t depth_token_only = 2;
  double mlp_ratio = 4.0;
};

// Multi-head attention whose heads are mixed by learnt linear maps before (proj_l) and after
// (proj_w) the softmax.
class TalkingHeadAttnImpl : public nn::Module {
 public:
  TalkingHeadAttnImpl(int64_t dim, int64_t num_heads)
      : num_heads_(num_heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / num_heads))) {
    qkv_ = register_module("qkv", nn::Linear(dim, dim * 3));
    proj_ = register_module("proj", nn::Linear(dim, dim));
    proj_l_ = register_module("proj_l", nn::Linear(num_heads, num_heads));
    proj_w_ = register_module("proj_w", nn::Linear(num_heads, num_heads));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    auto qkv = qkv_(x).reshape({b, n, 3, num_heads_, c / num_heads_}).permute({2, 0, 3, 1, 4});
    auto q = qkv[0] * scale_;
    auto attn = torch::matmul(q, qkv[1].transpose(-2, -1));
    attn = proj_l_(attn.permute({0, 2, 3, 1})).permute({0, 3, 1, 2}).softmax(-1);
    attn = proj_w_(attn.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
    return proj_(torch::matmul(attn, qkv[2]).transpose(1, 2).reshape({b, n, c}));
  }

 private:
  int64_t num_heads_;
  double scale_;
  nn::Linear qkv_{nullptr}, proj_{nullptr}, proj_l_{nullptr}, proj_w_{nullptr};
};
TORCH_MODULE(TalkingHeadAttn);

// Members shared by both block kinds: per-channel residual scales gamma_1/gamma_2, norms and MLP.
class LayerScaleBlockBase : public nn::Module {
 protected:
  void init(const CaitConfig& c, double mlp_ratio, double drop_path_rate, const std::function<void()>& add_attn) {
    drop_path_rate_ = drop_path_rate;
    gamma_1_ = register_parameter("gamma_1", torch::full({c.embed_dim}, c.init_values));
    gamma_2_ = register_parameter("gamma_2", torch::full({c.embed_dim}, c.init_values));
    norm1_ = layers::make_token_norm({"layernorm", 1e-6}, c.embed_dim);
    register_module("norm1", norm1_.ptr());
    add_attn();
    norm2_ = layers::make_token_norm({"layernorm", 1e-6}, c.embed_dim);
    register_module("norm2", norm2_.ptr());
    const auto hidden = static_cast<int64_t>(static_cast<double>(c.embed_dim) * mlp_ratio);
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(c.embed_dim, hidden)));
  }
  torch::Tensor residual(const torch::Tensor& y, const torch::Tensor& gamma) {
    return layers::drop_path(gamma * y, drop_path_rate_, is_training());
  }

  double drop_path_rate_ = 0.0;
  torch::Tensor gamma_1_, gamma_2_;
  nn::AnyModule norm1_, norm2_;
  layers::Mlp mlp_{nullptr};
};

class LayerScaleBlockImpl : public LayerScaleBlockBase {
 public:
  LayerScaleBlockImpl(const CaitConfig& c, double drop_path_rate) {
    init(c, c.mlp_ratio, drop_path_rate,
         [&] { attn_ = register_module("attn", TalkingHeadAttn(c.embed_dim, c.num_heads)); });
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + residual(attn_(norm1_.forward(x)), gamma_1_);
    return x + residual(mlp_(norm2_.forward(x)), gamma_2_);
  }

 private:
  TalkingHeadAttn attn_{nullptr};
};
TORCH_MODULE(LayerScaleBlock);

// Updates the class token from [class token, patch tokens]; the patch tokens stay as they are.
class LayerScaleBlockClassAttnImpl : public LayerScaleBlockBase {
 public:
  explicit LayerScaleBlockClassAttnImpl(const CaitConfig& c) {
    init(c, 4.0, 0.0, [&] { attn_ = register_module("attn", layers::ClassAttn(c.embed_dim, c.num_heads, true)); });
  }
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor cls) {
    const auto u = torch::cat({cls, x}, 1);
    cls = cls + residual(attn_(norm1_.forward(u)), gamma_1_);
    return cls + residual(mlp_(norm2_.forward(cls)), gamma_2_);
  }

 private:
  layers::ClassAttn attn_{nullptr};
};
TORCH_MODULE(LayerScaleBlockClassAttn);

class CaitImpl : public BackboneImpl {
 public:
  CaitImpl(const std::string& name, const CaitConfig& c, const ModelArgs& args) : BackboneImpl(name, args), cfg_(c) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    grid_ = c.img_size / c.patch_size;
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, c.patch_size).stride(c.patch_size)));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, grid_ * grid_, c.embed_dim}));

    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, c.patch_size});
    // features_only keeps the blocks up to the last requested one, like timm's pruning: no class
    // attention blocks, norm or head.
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    blocks_ = register_module("blocks", nn::Sequential());
    // CaiT gives every block the same drop path rate.
    for (int64_t i = 0; i < n_blocks; ++i) blocks_->push_back(LayerScaleBlock(c, args.drop_path_rate()));
    if (args.features_only()) return;
    auto token_blocks = register_module("blocks_token_only", nn::ModuleList());
    for (int64_t i = 0; i < c.depth_token_only; ++i) {
      token_blocks_.push_back(LayerScaleBlockClassAttn(c));
      token_blocks->push_back(token_blocks_.back());
    }
    norm_ = layers::make_token_norm({"layernorm", 1e-6}, c.embed_dim);
    register_module("norm", norm_.ptr());
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.embed_dim, args.num_classes()));
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }
  std::vector<int64_t> default_out_indices() const override {
    constexpr int64_t kLastN = 3;  // timm's default for CaiT features: the last three blocks
    std::vector<int64_t> out;
    for (int64_t i = std::max<int64_t>(0, cfg_.depth - kLastN); i < cfg_.depth; ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    const auto b = x.size(0);
    int64_t gh = 0, gw = 0;
    auto t = embed(x, gh, gw);
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<LayerScaleBlock>()->forward(t);
      if (i == indices[out.size()]) out.push_back(t.reshape({b, gh, gw, -1}).permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    int64_t gh = 0, gw = 0;
    const auto t = blocks_->forward(embed(x, gh, gw));
    auto cls = cls_token_.expand({t.size(0), -1, -1});
    for (auto& blk : token_blocks_) cls = blk->forward(t, cls);
    // timm normalises [class token, patch tokens] and pools the class token: only its row matters.
    return classify(norm_.forward(cls).select(1, 0), head_);
  }

  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  // Patch projection plus the position embedding, resampled when the grid differs from the
  // configured image size's.
  torch::Tensor embed(const torch::Tensor& x, int64_t& gh, int64_t& gw) {
    const auto p = cfg_.patch_size;
    if (x.size(2) % p != 0 || x.size(3) % p != 0)
      throw std::invalid_argument(model_name() + ": input height and width must be divisible by the patch size " +
                                  std::to_string(p) + ", got " + std::to_string(x.size(2)) + "x" +
                                  std::to_string(x.size(3)));
    auto t = proj_(x);
    gh = t.size(2);
    gw = t.size(3);
    t = t.flatten(2).transpose(1, 2);
    return t + layers::resample_abs_pos_embed(pos_embed_, gh, gw, grid_, grid_, 0);
  }

  CaitConfig cfg_;
  int64_t grid_;
  nn::Conv2d proj_{nullptr};
  torch::Tensor cls_token_, pos_embed_;
  nn::Sequential blocks_{nullptr};
  std::vector<LayerScaleBlockClassAttn> token_blocks_;
  nn::AnyModule norm_;
  nn::Linear head_{nullptr};
};

CaitConfig cait_cfg(int64_t dim, int64_t depth, int64_t heads, double init_values, int64_t img) {
  CaitConfig c{dim, depth, heads, init_values};
  c.img_size = img;
  return c;
}

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, CaitConfig>> models = {
      {"cait_xxs24_224", cait_cfg(192, 24, 4, 1e-5, 224)}, {"cait_xxs24_384", cait_cfg(192, 24, 4, 1e-5, 384)},
      {"cait_xxs36_224", cait_cfg(192, 36, 4, 1e-5, 224)}, {"cait_xxs36_384", cait_cfg(192, 36, 4, 1e-5, 384)},
      {"cait_xs24_384", cait_cfg(288, 24, 6, 1e-5, 384)},  {"cait_s24_224", cait_cfg(384, 24, 8, 1e-5, 224)},
      {"cait_s24_384", cait_cfg(384, 24, 8, 1e-5, 384)},   {"cait_s36_384", cait_cfg(384, 36, 8, 1e-6, 384)},
      {"cait_m36_384", cait_cfg(768, 36, 16, 1e-6, 384)},  {"cait_m48_448", cait_cfg(768, 48, 16, 1e-6, 448)},
  };
  register_configs<CaitImpl>("cait", models);
}

}  // namespace cait
}  // namespace smp::timm
