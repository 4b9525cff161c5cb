// timm's Pyramid Vision Transformer v2 (pvt_v2.py): four stages of overlapping-patch embeddings and
// transformer blocks whose keys/values come from a spatially reduced (strided conv, or pooled for
// the linear variant) copy of the tokens, with a depthwise conv inside the MLP. Any input size.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/sr_attention.h"

namespace smp::timm {

namespace pvt_v2 {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct PvtV2Config {
  std::vector<int64_t> depths, dims, num_heads;
  std::vector<int64_t> mlp_ratios = {8, 8, 4, 4};
  bool linear = false;  // pooled keys/values (the _li variant)
};
const std::vector<int64_t> kSrRatios = {8, 4, 2, 1};

nn::LayerNorm layer_norm(int64_t dim, double eps) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(eps)); }

// fc1 -> (ReLU for the linear variant) -> depthwise 3x3 on the token grid -> GELU -> fc2.
class MlpImpl : public nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, bool extra_relu) : extra_relu_(extra_relu) {
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    dwconv = register_module("dwconv", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1).groups(hidden)));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    auto y = fc1(x);
    const auto b = y.size(0), c = y.size(2);
    y = y.transpose(1, 2).reshape({b, c, h, w});
    if (extra_relu_) y = torch::relu(y);
    y = dwconv(y).flatten(2).transpose(1, 2);
    return fc2(torch::gelu(y));
  }

 private:
  bool extra_relu_;
  nn::Linear fc1{nullptr}, fc2{nullptr};
  nn::Conv2d dwconv{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, int64_t sr_ratio, bool linear, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim, 1e-6));
    attn = register_module(
        "attn", layers::SrAttention(layers::SrAttentionOptions(dim, heads).sr_ratio(sr_ratio).linear(linear)));
    norm2 = register_module("norm2", layer_norm(dim, 1e-6));
    mlp = register_module("mlp", Mlp(dim, dim * mlp_ratio, linear));
  }
  torch::Tensor forward(torch::Tensor x, int64_t h, int64_t w) {
    x = x + layers::drop_path(attn(norm1(x), h, w), drop_path_rate_, is_training());
    return x + layers::drop_path(mlp(norm2(x), h, w), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  layers::SrAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

// Strided conv with "same"-style padding, then LayerNorm; NCHW in, NHWC out.
class PatchEmbedImpl : public nn::Module {
 public:
  PatchEmbedImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2)));
    norm = register_module("norm", layer_norm(out, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(proj(x).permute({0, 2, 3, 1})); }

 private:
  nn::Conv2d proj{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchEmbed);

// NCHW (after a downsample) or NHWC (the first stage, straight from the patch embedding) in, NCHW out.
class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, bool downsample, int64_t heads, int64_t mlp_ratio, int64_t sr_ratio, bool linear,
            const std::vector<double>& drop_path_rates) {
    if (downsample) this->downsample = register_module("downsample", PatchEmbed(in, out, 3, 2));
    auto list = register_module("blocks", nn::ModuleList());
    for (double rate : drop_path_rates) {
      blocks.push_back(Block(out, heads, mlp_ratio, sr_ratio, linear, rate));
      list->push_back(blocks.back());
    }
    norm = register_module("norm", layer_norm(out, 1e-6));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    x = x.reshape({b, h * w, c});
    for (auto& blk : blocks) x = blk(x, h, w);
    return norm(x).reshape({b, h, w, c}).permute({0, 3, 1, 2}).contiguous();
  }

 private:
  PatchEmbed downsample{nullptr};
  std::vector<Block> blocks;
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(Stage);

class PvtV2Impl : public BackboneImpl {
 public:
  PvtV2Impl(const std::string& name, const PvtV2Config& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    patch_embed_ = register_module("patch_embed", PatchEmbed(args.in_chans(), c.dims[0], 7, 4));
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    auto stages = register_module("stages", nn::Sequential());
    int64_t dim = c.dims[0];
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[u], int64_t{4} << i});
      if (i <= last) {
        stages_.push_back(Stage(dim, c.dims[u], i > 0, c.num_heads[u], c.mlp_ratios[u], kSrRatios[u], c.linear, rates[u]));
        stages->push_back(stages_.back());
      }
      dim = c.dims[u];
    }
    if (args.features_only() || args.num_classes() <= 0) return;
    head_ = register_module("head", nn::Linear(dim, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = patch_embed_(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)](y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = patch_embed_(x);
    for (auto& s : stages_) y = s(y);
    return pool_and_classify(y, head_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  PatchEmbed patch_embed_{nullptr};
  std::vector<Stage> stages_;
  nn::Linear head_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> heads{1, 2, 5, 8}, wide{64, 128, 320, 512};
  const std::vector<std::pair<std::string, PvtV2Config>> models = {
      {"pvt_v2_b0", {{2, 2, 2, 2}, {32, 64, 160, 256}, heads}},
      {"pvt_v2_b1", {{2, 2, 2, 2}, wide, heads}},
      {"pvt_v2_b2", {{3, 4, 6, 3}, wide, heads}},
      {"pvt_v2_b3", {{3, 4, 18, 3}, wide, heads}},
      {"pvt_v2_b4", {{3, 8, 27, 3}, wide, heads}},
      {"pvt_v2_b5", {{3, 6, 40, 3}, wide, heads, {4, 4, 4, 4}}},
      {"pvt_v2_b2_li", {{3, 4, 6, 3}, wide, heads, {8, 8, 4, 4}, true}},
  };
  register_configs<PvtV2Impl>("pvt_v2", models);
}

}  // namespace pvt_v2
}  // namespace smp::timm
