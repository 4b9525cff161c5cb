// PiT, pooling-based vision transformers (timm's pit.py): ViT blocks on a token map that depthwise
// strided convolutions shrink between stages, the class (and distillation) tokens passed along
// through a linear layer. Features are each stage's token map; the input size is fixed by the
// position embedding (224 for every configuration).
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/token_norm.h"

namespace smp::timm {

namespace pit {
namespace {

namespace nn = torch::nn;

struct PitConfig {
  int64_t patch_size, stride;
  std::vector<int64_t> base_dims, depth, heads;
  bool distilled = false;
  int64_t img_size = 224;
};

nn::AnyModule layer_norm(int64_t dim) { return layers::make_token_norm({"layernorm", 1e-6}, dim); }

// The standard pre-norm ViT block (LayerNorm eps 1e-6, qkv bias, MLP ratio 4).
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    norm1_ = layer_norm(dim);
    register_module("norm1", norm1_.ptr());
    attn_ = register_module("attn", layers::Attention(layers::AttentionOptions(dim, heads)));
    norm2_ = layer_norm(dim);
    register_module("norm2", norm2_.ptr());
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + layers::drop_path(attn_(norm1_.forward(x)), drop_path_rate_, is_training());
    return x + layers::drop_path(mlp_(norm2_.forward(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::AnyModule norm1_, norm2_;
  layers::Attention attn_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(Block);

// One stage: [pooling: depthwise-grouped 3x3/2 conv on the map, linear on the tokens], then the
// blocks on [tokens, flattened map].
class TransformerImpl : public nn::Module {
 public:
  TransformerImpl(int64_t prev_dim, int64_t dim, int64_t heads, int64_t depth, const std::vector<double>& dpr) {
    if (prev_dim > 0) {
      auto pool = register_module("pool", std::make_shared<nn::Module>());
      pool_conv_ = pool->register_module(
          "conv", nn::Conv2d(nn::Conv2dOptions(prev_dim, dim, 3).stride(2).padding(1).groups(prev_dim)));
      pool_fc_ = pool->register_module("fc", nn::Linear(prev_dim, dim));
    }
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks_->push_back(Block(dim, heads, dpr[static_cast<size_t>(i)]));
  }
  // x: NCHW map, tokens: [B, n, C]; both updated.
  torch::Tensor forward(torch::Tensor x, torch::Tensor& tokens) {
    if (pool_conv_) {
      x = pool_conv_(x);
      tokens = pool_fc_(tokens);
    }
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), n = tokens.size(1);
    auto t = blocks_->forward(torch::cat({tokens, x.flatten(2).transpose(1, 2)}, 1));
    tokens = t.slice(1, 0, n);
    return t.slice(1, n).transpose(1, 2).reshape({b, c, h, w});
  }

 private:
  nn::Conv2d pool_conv_{nullptr};
  nn::Linear pool_fc_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Transformer);

class PoolingVisionTransformerImpl : public BackboneImpl {
 public:
  PoolingVisionTransformerImpl(const std::string& name, const PitConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), distilled_(c.distilled) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option; got " + std::to_string(args.output_stride()));
    grid_ = (c.img_size - c.patch_size) / c.stride + 1;
    const int64_t embed_dim = c.base_dims[0] * c.heads[0];
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    conv_ = patch_embed->register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), embed_dim, c.patch_size).stride(c.stride)));
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, embed_dim, grid_, grid_}));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, c.distilled ? 2 : 1, embed_dim}));

    // timm's hook-based features run the whole network (no stage is left out).
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depth);
    auto transformers = register_module("transformers", nn::ModuleList());
    int64_t prev = 0;
    for (size_t i = 0; i < c.depth.size(); ++i) {
      const int64_t dim = c.base_dims[i] * c.heads[i];
      stages_.push_back(Transformer(prev, dim, c.heads[i], c.depth[i], dpr[i]));
      transformers->push_back(stages_.back());
      feature_info_.push_back({"transformers." + std::to_string(i), dim, (c.stride - 1) << i});
      prev = dim;
    }
    norm_ = layer_norm(prev);
    register_module("norm", norm_.ptr());
    if (!args.features_only() && args.num_classes() > 0) {
      head_ = register_module("head", nn::Linear(prev, args.num_classes()));
      if (c.distilled) head_dist_ = register_module("head_dist", nn::Linear(prev, args.num_classes()));
    }
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kHook; }
  std::vector<int64_t> default_out_indices() const override { return {0, 1, 2}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    torch::Tensor tokens;
    auto y = embed(x, tokens);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->forward(y, tokens);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    torch::Tensor tokens;
    auto y = embed(x, tokens);
    for (auto& stage : stages_) y = stage->forward(y, tokens);
    tokens = norm_.forward(tokens);
    if (!distilled_) return classify(tokens.select(1, 0), head_);
    // Distilled: the mean of both heads (timm applies its head dropout to each token first).
    auto a = layers::dropout(tokens.select(1, 0), head_drop_rate(), is_training());
    auto d = layers::dropout(tokens.select(1, 1), head_drop_rate(), is_training());
    if (!head_) return (a + d) / 2;
    return (head_(a) + head_dist_(d)) / 2;
  }

  std::string first_conv() const override { return "patch_embed.conv"; }

 private:
  torch::Tensor embed(const torch::Tensor& x, torch::Tensor& tokens) {
    auto y = conv_(x);
    if (y.size(2) != grid_ || y.size(3) != grid_)
      throw std::invalid_argument(model_name() + ": PiT's position embedding fixes the input size; got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    tokens = cls_token_.expand({x.size(0), -1, -1});
    return y + pos_embed_;
  }

  bool distilled_;
  int64_t grid_;
  nn::Conv2d conv_{nullptr};
  torch::Tensor pos_embed_, cls_token_;
  std::vector<Transformer> stages_;
  nn::AnyModule norm_;
  nn::Linear head_{nullptr}, head_dist_{nullptr};
};

PitConfig pit_cfg(int64_t patch, int64_t stride, int64_t base_dim, std::vector<int64_t> depth,
                  std::vector<int64_t> heads, bool distilled) {
  PitConfig c;
  c.patch_size = patch;
  c.stride = stride;
  c.base_dims = {base_dim, base_dim, base_dim};
  c.depth = std::move(depth);
  c.heads = std::move(heads);
  c.distilled = distilled;
  return c;
}

}  // namespace

void register_family() {
  std::vector<std::pair<std::string, PitConfig>> models;
  for (bool distilled : {false, true}) {
    const std::string suffix = distilled ? "_distilled_224" : "_224";
    models.push_back({"pit_b" + suffix, pit_cfg(14, 7, 64, {3, 6, 4}, {4, 8, 16}, distilled)});
    models.push_back({"pit_s" + suffix, pit_cfg(16, 8, 48, {2, 6, 4}, {3, 6, 12}, distilled)});
    models.push_back({"pit_xs" + suffix, pit_cfg(16, 8, 48, {2, 6, 4}, {2, 4, 8}, distilled)});
    models.push_back({"pit_ti" + suffix, pit_cfg(16, 8, 32, {2, 6, 4}, {2, 4, 8}, distilled)});
  }
  register_configs<PoolingVisionTransformerImpl>("pit", models);
}

}  // namespace pit
}  // namespace smp::timm
