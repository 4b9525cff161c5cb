// timm's VOLO (volo.py): a first stage of "outlooker" blocks (each token attends over the k x k
// neighbourhood of a stride-2 grid, with weights predicted from the pooled token itself and folded
// back), then plain transformer stages at 1/16 and two class-attention blocks for the classifier.
// Channels-last (NHWC) inside. The learnt position embedding has the pretraining grid, so inputs must
// have the pretraining size, as in timm.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace volo {
namespace {

struct VoloConfig {
  std::vector<int64_t> layers, dims, num_heads;
  int64_t img_size = 224;
  double mlp_ratio = 3.0;
  int64_t stem_hidden = 64;
};
constexpr int64_t kPatch = 8;
constexpr int64_t kKernel = 3;
constexpr int64_t kDefaultLastN = 3;  // timm's default out_indices: the last three stages

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim})); }

class OutlookAttentionImpl : public nn::Module {
 public:
  OutlookAttentionImpl(int64_t dim, int64_t heads) : heads_(heads), scale_(std::pow(double(dim / heads), -0.5)) {
    v = register_module("v", nn::Linear(nn::LinearOptions(dim, dim).bias(false)));
    attn = register_module("attn", nn::Linear(dim, kKernel * kKernel * kKernel * kKernel * heads));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC, stride 2, kernel 3, padding 1
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    const int64_t kk = kKernel * kKernel, stride = 2;
    const auto gh = (h + stride - 1) / stride, gw = (w + stride - 1) / stride;
    auto values = F::unfold(v(x).permute({0, 3, 1, 2}), F::UnfoldFuncOptions(kKernel).padding(1).stride(stride))
                      .reshape({b, heads_, c / heads_, kk, gh * gw})
                      .permute({0, 1, 4, 3, 2});  // B, heads, N, kk, head_dim
    auto pooled = F::avg_pool2d(x.permute({0, 3, 1, 2}), F::AvgPool2dFuncOptions(stride).stride(stride).ceil_mode(true))
                      .permute({0, 2, 3, 1});
    auto weights = attn(pooled).reshape({b, gh * gw, heads_, kk, kk}).permute({0, 2, 1, 3, 4});
    weights = (weights * scale_).softmax(-1);
    auto y = torch::matmul(weights, values).permute({0, 1, 4, 3, 2}).reshape({b, c * kk, gh * gw});
    y = F::fold(y, F::FoldFuncOptions({h, w}, kKernel).padding(1).stride(stride));
    return proj(y.permute({0, 2, 3, 1}));
  }

 private:
  int64_t heads_;
  double scale_;
  nn::Linear v{nullptr}, attn{nullptr}, proj{nullptr};
};
TORCH_MODULE(OutlookAttention);

class AttentionImpl : public nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim * 3).bias(false)));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3), hd = c / heads_;
    auto t = qkv(x).reshape({b, h * w, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto a = torch::matmul(t[0] * std::pow(double(hd), -0.5), t[1].transpose(-2, -1)).softmax(-1);
    return proj(torch::matmul(a, t[2]).transpose(1, 2).reshape({b, h, w, c}));
  }

 private:
  int64_t heads_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

// Pre-norm residual block around either attention kind (timm's Outlooker / Transformer).
template <typename Attn>
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", Attn(dim, heads));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(dim * mlp_ratio))));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x + layers::drop_path(attn(norm1(x)), drop_path_rate_, is_training());
    return y + layers::drop_path(mlp(norm2(y)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attn attn{nullptr};
  layers::Mlp mlp{nullptr};
};
using OutlookerImpl = BlockImpl<OutlookAttention>;
using TransformerImpl = BlockImpl<Attention>;
TORCH_MODULE(Outlooker);
TORCH_MODULE(Transformer);

class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, out, 2).stride(2)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return proj(x.permute({0, 3, 1, 2})).permute({0, 2, 3, 1}); }

 private:
  nn::Conv2d proj{nullptr};
};
TORCH_MODULE(Downsample);

// Class attention: only the class token queries; it alone is updated.
class ClassAttentionImpl : public nn::Module {
 public:
  ClassAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
    kv = register_module("kv", nn::Linear(nn::LinearOptions(dim, dim * 2).bias(false)));
    q = register_module("q", nn::Linear(nn::LinearOptions(dim, dim).bias(false)));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, N, C] -> [B, 1, C]
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto t = kv(x).reshape({b, n, 2, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto query = q(x.slice(1, 0, 1)).reshape({b, heads_, 1, hd}) * std::pow(double(hd), -0.5);
    auto a = torch::matmul(query, t[0].transpose(-2, -1)).softmax(-1);
    return proj(torch::matmul(a, t[1]).transpose(1, 2).reshape({b, 1, c}));
  }

 private:
  int64_t heads_;
  nn::Linear kv{nullptr}, q{nullptr}, proj{nullptr};
};
TORCH_MODULE(ClassAttention);

class ClassBlockImpl : public nn::Module {
 public:
  ClassBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double drop) : drop_(drop) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", ClassAttention(dim, heads));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(dim * mlp_ratio)).drop(drop)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto cls = x.slice(1, 0, 1) + layers::dropout(attn(norm1(x)), drop_, is_training());
    cls = cls + mlp(norm2(cls));
    return torch::cat({cls, x.slice(1, 1)}, 1);
  }

 private:
  double drop_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ClassAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(ClassBlock);

class VoloImpl : public BackboneImpl {
 public:
  VoloImpl(const std::string& name, const VoloConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.layers.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    grid_ = c.img_size / kPatch / 2;
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, grid_, grid_, c.dims.back()}));
    // timm's pruning keeps the class token even when it drops the blocks that use it.
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.dims.back()}));
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    const auto hid = c.stem_hidden;
    auto conv_bn_relu = [](nn::Sequential& s, int64_t in, int64_t out, int64_t k, int64_t stride) {
      s->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false)));
      s->push_back(nn::BatchNorm2d(out));
      s->push_back(nn::ReLU());
    };
    stem_ = nn::Sequential();
    conv_bn_relu(stem_, args.in_chans(), hid, 7, 2);
    conv_bn_relu(stem_, hid, hid, 3, 1);
    conv_bn_relu(stem_, hid, hid, 3, 1);
    patch_embed->register_module("conv", stem_);
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(hid, c.dims[0], kPatch / 2).stride(kPatch / 2)));

    // timm's rate: max * (global block index) / (blocks - 1), for the transformer stages only.
    int64_t total = 0;
    for (auto d : c.layers) total += d;
    network_ = register_module("network", nn::ModuleList());
    int64_t reduction = kPatch, first_block = 0;
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      // Stage i sits at network index i, shifted by one after the downsampling.
      feature_info_.push_back({"network." + std::to_string(i == 0 ? 0 : i + 1), c.dims[u], reduction});
      if (i <= last) {
        stage_ends_.push_back(static_cast<int64_t>(network_->size()));
        nn::Sequential stage;
        for (int64_t j = 0; j < c.layers[u]; ++j) {
          if (i == 0) {
            stage->push_back(Outlooker(c.dims[u], c.num_heads[u], c.mlp_ratio, 0.0));
          } else {
            const double rate = args.drop_path_rate() * double(first_block + j) / double(total - 1);
            stage->push_back(Transformer(c.dims[u], c.num_heads[u], c.mlp_ratio, rate));
          }
        }
        network_->push_back(stage);
        if (i == 0) {  // the one downsampling, 1/8 -> 1/16
          if (i < last) network_->push_back(Downsample(c.dims[0], c.dims[1]));
        }
      }
      if (i == 0) reduction *= 2;
      first_block += c.layers[u];
    }
    if (args.features_only()) return;
    post_network_ = register_module("post_network", nn::ModuleList());
    for (int i = 0; i < 2; ++i)
      post_network_->push_back(ClassBlock(c.dims.back(), c.num_heads.back(), c.mlp_ratio, args.drop_rate()));
    if (args.num_classes() > 0) aux_head_ = register_module("aux_head", nn::Linear(c.dims.back(), args.num_classes()));
    norm_ = register_module("norm", layer_norm(c.dims.back()));
    if (args.num_classes() > 0) head_ = register_module("head", nn::Linear(c.dims.back(), args.num_classes()));
  }

  std::vector<int64_t> default_out_indices() const override {
    const auto count = static_cast<int64_t>(feature_info_.size());
    std::vector<int64_t> out;
    for (int64_t i = count - kDefaultLastN; i < count; ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stage_ends_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = embed(x);
    for (int64_t idx = 0; out.size() < indices.size(); ++idx) {
      y = run_block(idx, y);
      if (idx == stage_ends_[static_cast<size_t>(indices[out.size()])]) out.push_back(y.permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = embed(x);
    for (int64_t idx = 0; idx < static_cast<int64_t>(network_->size()); ++idx) y = run_block(idx, y);
    auto tokens = y.reshape({y.size(0), -1, y.size(3)});
    tokens = torch::cat({cls_token_.expand({tokens.size(0), -1, -1}), tokens}, 1);
    for (const auto& blk : *post_network_) tokens = blk->as<ClassBlock>()->forward(tokens);
    tokens = norm_(tokens);
    if (!head_) return tokens.select(1, 0);
    // The class token's logits plus half the best per-class patch-token logits (timm's aux head).
    auto aux = aux_head_(layers::dropout(tokens.slice(1, 1), head_drop_rate(), is_training()));
    return head_(tokens.select(1, 0)) + 0.5 * std::get<0>(aux.max(1));
  }

  std::string first_conv() const override { return "patch_embed.conv.0"; }
  FeatureWrap feature_wrap() const override { return FeatureWrap::kGetter; }

 private:
  torch::Tensor embed(const torch::Tensor& x) {
    auto y = proj_(stem_->forward(x)).permute({0, 2, 3, 1});
    if (y.size(1) != 2 * grid_ || y.size(2) != 2 * grid_)
      throw std::invalid_argument(model_name() + ": input must be " + std::to_string(grid_ * 2 * kPatch) + "x" +
                                  std::to_string(grid_ * 2 * kPatch) + " (its position embedding grid), got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    return y;
  }
  torch::Tensor run_block(int64_t idx, torch::Tensor y) {
    if (idx == 2) y = y + pos_embed_;  // after the outlooker stage and the downsampling
    auto m = network_[static_cast<size_t>(idx)];
    if (auto* d = m->as<Downsample>()) return d->forward(y);
    return m->as<nn::Sequential>()->forward(y);
  }

  int64_t grid_;
  torch::Tensor pos_embed_, cls_token_;
  nn::Sequential stem_{nullptr};
  nn::Conv2d proj_{nullptr};
  nn::ModuleList network_{nullptr}, post_network_{nullptr};
  std::vector<int64_t> stage_ends_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear aux_head_{nullptr}, head_{nullptr};
};

}  // namespace

void register_family() {
  const VoloConfig d1{{4, 4, 8, 2}, {192, 384, 384, 384}, {6, 12, 12, 12}};
  const VoloConfig d2{{6, 4, 10, 4}, {256, 512, 512, 512}, {8, 16, 16, 16}};
  const VoloConfig d3{{8, 8, 16, 4}, {256, 512, 512, 512}, {8, 16, 16, 16}};
  const VoloConfig d4{{8, 8, 16, 4}, {384, 768, 768, 768}, {12, 16, 16, 16}};
  const VoloConfig d5{{12, 12, 20, 4}, {384, 768, 768, 768}, {12, 16, 16, 16}, 224, 4.0, 128};
  auto at = [](VoloConfig c, int64_t size) {
    c.img_size = size;
    return c;
  };
  const std::vector<std::pair<std::string, VoloConfig>> models = {
      {"volo_d1_224", d1},          {"volo_d1_384", at(d1, 384)}, {"volo_d2_224", d2},
      {"volo_d2_384", at(d2, 384)}, {"volo_d3_224", d3},          {"volo_d3_448", at(d3, 448)},
      {"volo_d4_224", d4},          {"volo_d4_448", at(d4, 448)}, {"volo_d5_224", d5},
      {"volo_d5_448", at(d5, 448)}, {"volo_d5_512", at(d5, 512)},
  };
  register_configs<VoloImpl>("volo", models);
}

}  // namespace volo
}  // namespace smp::timm
