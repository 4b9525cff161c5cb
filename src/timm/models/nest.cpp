// NesT (timm's nest.py): transformer layers that attend within non-overlapping image blocks, with
// conv + max-pool aggregation between levels. Its block grid and position embeddings fix the input
// size (224 for every configuration).
#include <smp/timm.h>

#include <cmath>
#include <limits>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/token_norm.h"

namespace smp::timm {

namespace nest {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct NestConfig {
  std::vector<int64_t> embed_dims, num_heads, depths;
  bool same_pad = false;  // the *_jx variants: TensorFlow 'SAME' max pooling
  int64_t img_size = 224, patch_size = 4;
};

nn::AnyModule layer_norm(int64_t dim) { return layers::make_token_norm({"layernorm", 1e-6}, dim); }

// Multi-head attention within each block: x is (B, T blocks, N tokens, C).
class BlockAttentionImpl : public nn::Module {
 public:
  BlockAttentionImpl(int64_t dim, int64_t num_heads) : num_heads_(num_heads) {
    qkv_ = register_module("qkv", nn::Linear(dim, 3 * dim));
    proj_ = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), t = x.size(1), n = x.size(2), c = x.size(3);
    const auto hd = c / num_heads_;
    auto qkv = qkv_(x).reshape({b, t, n, 3, num_heads_, hd}).permute({3, 0, 4, 1, 2, 5});
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    auto attn = torch::matmul(qkv[0] * scale, qkv[1].transpose(-2, -1)).softmax(-1);
    // timm merges heads as (head_dim, heads), not (heads, head_dim); the checkpoints expect it.
    auto y = torch::matmul(attn, qkv[2]).permute({0, 2, 3, 4, 1}).reshape({b, t, n, c});
    return proj_(y);
  }

 private:
  int64_t num_heads_;
  nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(BlockAttention);

class TransformerLayerImpl : public nn::Module {
 public:
  TransformerLayerImpl(int64_t dim, int64_t num_heads, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    norm1_ = layer_norm(dim);
    register_module("norm1", norm1_.ptr());
    attn_ = register_module("attn", BlockAttention(dim, num_heads));
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
  BlockAttention attn_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(TransformerLayer);

// Block aggregation between levels: 3x3 conv, LayerNorm over channels, 3x3/2 max pool.
class ConvPoolImpl : public nn::Module {
 public:
  ConvPoolImpl(int64_t in, int64_t out, bool same_pad) : same_pad_(same_pad) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)));
    norm_ = layer_norm(out);
    register_module("norm", norm_.ptr());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (x.size(-2) % 2 != 0 || x.size(-1) % 2 != 0)
      throw std::invalid_argument("nest: block aggregation needs even feature map sizes");
    auto y = norm_.forward(conv_(x).permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
    if (!same_pad_) return F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    // TensorFlow 'SAME': on even sizes one row/column of -inf after the map, none before.
    auto amount = [](int64_t size) { return std::max<int64_t>(((size + 1) / 2 - 1) * 2 + 3 - size, 0); };
    const int64_t ph = amount(y.size(-2)), pw = amount(y.size(-1));
    y = F::pad(y, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2})
                      .value(-std::numeric_limits<double>::infinity()));
    return F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2));
  }

 private:
  bool same_pad_;
  nn::Conv2d conv_{nullptr};
  nn::AnyModule norm_;
};
TORCH_MODULE(ConvPool);

// One level: [aggregation], split into blocks, position embedding, transformer layers, merge back.
class NestLevelImpl : public nn::Module {
 public:
  NestLevelImpl(int64_t num_blocks, int64_t block_size, int64_t seq_length, int64_t num_heads, int64_t depth,
                int64_t dim, int64_t prev_dim, bool same_pad, const std::vector<double>& dpr)
      : block_size_(block_size) {
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, num_blocks, seq_length, dim}));
    if (prev_dim > 0) pool_ = register_module("pool", ConvPool(prev_dim, dim, same_pad));
    encoder_ = register_module("transformer_encoder", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) encoder_->push_back(TransformerLayer(dim, num_heads, dpr[static_cast<size_t>(i)]));
  }
  torch::Tensor forward(const torch::Tensor& input) {
    auto x = (pool_ ? pool_(input) : input).permute({0, 2, 3, 1});  // NHWC
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3), s = block_size_;
    // blockify: (B, H, W, C) -> (B, T, N, C) with T blocks of s x s tokens
    x = x.reshape({b, h / s, s, w / s, s, c}).transpose(2, 3).reshape({b, (h / s) * (w / s), -1, c});
    x = encoder_->forward(x + pos_embed_);
    // deblockify (square grid)
    const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(x.size(1)))));
    x = x.reshape({b, grid, grid, s, s, c}).transpose(2, 3).reshape({b, grid * s, grid * s, c});
    return x.permute({0, 3, 1, 2});
  }

 private:
  int64_t block_size_;
  torch::Tensor pos_embed_;
  ConvPool pool_{nullptr};
  nn::Sequential encoder_{nullptr};
};
TORCH_MODULE(NestLevel);

class NestImpl : public BackboneImpl {
 public:
  NestImpl(const std::string& name, const NestConfig& c, const ModelArgs& args) : BackboneImpl(name, args), cfg_(c) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option; got " + std::to_string(args.output_stride()));
    const auto num_levels = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, num_levels, name);
    const int64_t grid = c.img_size / c.patch_size;
    const int64_t first_blocks = int64_t{1} << (2 * (num_levels - 1));  // 4^(levels-1)
    const auto blocks_per_side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(first_blocks))));
    const int64_t block_size = grid / blocks_per_side;
    const int64_t seq_length = grid * grid / first_blocks;

    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dims[0], c.patch_size).stride(c.patch_size)));

    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    auto levels = register_module("levels", nn::ModuleList());
    int64_t prev = 0, stride = 4;
    for (int64_t i = 0; i < num_levels; ++i) {
      const auto si = static_cast<size_t>(i);
      if (i <= last) {
        levels_.push_back(NestLevel(first_blocks >> (2 * i), block_size, seq_length, c.num_heads[si], c.depths[si],
                                    c.embed_dims[si], prev, c.same_pad, dpr[si]));
        levels->push_back(levels_.back());
      }
      feature_info_.push_back({"levels." + std::to_string(i), c.embed_dims[si], stride});
      prev = c.embed_dims[si];
      stride *= 2;
    }
    if (!args.features_only()) {
      norm_ = layer_norm(prev);
      register_module("norm", norm_.ptr());
      if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(levels_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = embed(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = levels_[static_cast<size_t>(i)](y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = embed(x);
    for (auto& level : levels_) y = level(y);
    // LayerNorm over channels, then average pooling: pool the NHWC map directly.
    return classify(norm_.forward(y.permute({0, 2, 3, 1})).mean({1, 2}), head_);
  }

  std::vector<std::string> flattened_children() const override { return {"levels"}; }
  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  torch::Tensor embed(const torch::Tensor& x) {
    if (x.size(2) != cfg_.img_size || x.size(3) != cfg_.img_size)
      throw std::invalid_argument(model_name() + ": NesT needs a " + std::to_string(cfg_.img_size) + "x" +
                                  std::to_string(cfg_.img_size) + " input (its block grid is fixed), got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    return proj_(x);
  }

  NestConfig cfg_;
  nn::Conv2d proj_{nullptr};
  std::vector<NestLevel> levels_;
  nn::AnyModule norm_;
  nn::Linear head_{nullptr};
};

NestConfig cfg(std::vector<int64_t> dims, std::vector<int64_t> heads, std::vector<int64_t> depths, bool jx) {
  NestConfig c;
  c.embed_dims = std::move(dims);
  c.num_heads = std::move(heads);
  c.depths = std::move(depths);
  c.same_pad = jx;
  return c;
}

}  // namespace

void register_family() {
  std::vector<std::pair<std::string, NestConfig>> models;
  for (bool jx : {false, true}) {
    const std::string suffix = jx ? "_jx" : "";
    models.push_back({"nest_base" + suffix, cfg({128, 256, 512}, {4, 8, 16}, {2, 2, 20}, jx)});
    models.push_back({"nest_small" + suffix, cfg({96, 192, 384}, {3, 6, 12}, {2, 2, 20}, jx)});
    models.push_back({"nest_tiny" + suffix, cfg({96, 192, 384}, {3, 6, 12}, {2, 2, 8}, jx)});
  }
  register_configs<NestImpl>("nest", models);
}

}  // namespace nest
}  // namespace smp::timm
