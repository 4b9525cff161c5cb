// timm's BEiT / BEiT v2 (beit.py): a ViT with a class token, a per-block relative position bias over
// the patch grid (plus class-token entries), layer scale (gamma_1/gamma_2) and q/v-only qkv biases.
// The biases are tied to the configured grid, so the input must have the pretraining size.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/pos_embed_rel.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace beit {
namespace {

struct BeitConfig {
  int64_t img_size, patch_size, embed_dim, depth, num_heads;
  double init_values;
  bool imagenet_stats = false;  // BEiT v2's default weights use ImageNet mean/std, v1's 0.5
};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

class BeitAttentionImpl : public nn::Module {
 public:
  BeitAttentionImpl(int64_t dim, int64_t heads, int64_t grid) : heads_(heads) {
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim * 3).bias(false)));
    q_bias = register_parameter("q_bias", torch::zeros({dim}));
    v_bias = register_parameter("v_bias", torch::zeros({dim}));
    // Same table layout and parameter name as the shared RelPosBias with one prefix token, but
    // registered directly on the attention module as timm does.
    relative_position_bias_table =
        register_parameter("relative_position_bias_table", torch::zeros({(2 * grid - 1) * (2 * grid - 1) + 3, heads}));
    index_ = layers::relative_position_index(grid, grid, true).view(-1);
    n_ = grid * grid + 1;
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto bias = torch::cat({q_bias, torch::zeros_like(q_bias), v_bias});
    auto t = torch::nn::functional::linear(x, qkv->weight, bias).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto attn = torch::matmul(t[0] * std::pow(static_cast<double>(hd), -0.5), t[1].transpose(-2, -1));
    const auto& tab = relative_position_bias_table;
    attn = attn + tab.index_select(0, index_.to(tab.device())).view({n_, n_, -1}).permute({2, 0, 1}).unsqueeze(0);
    return proj(torch::matmul(attn.softmax(-1), t[2]).transpose(1, 2).reshape({b, n, c}));
  }
  torch::Tensor q_bias, v_bias, relative_position_bias_table;

 private:
  int64_t heads_, n_;
  torch::Tensor index_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(BeitAttention);

class BeitBlockImpl : public nn::Module {
 public:
  BeitBlockImpl(const BeitConfig& c, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    const auto dim = c.embed_dim;
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", BeitAttention(dim, c.num_heads, c.img_size / c.patch_size));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, dim * 4)));
    gamma_1 = register_parameter("gamma_1", torch::full({dim}, c.init_values));
    gamma_2 = register_parameter("gamma_2", torch::full({dim}, c.init_values));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + layers::drop_path(gamma_1 * attn(norm1(x)), drop_path_rate_, is_training());
    return x + layers::drop_path(gamma_2 * mlp(norm2(x)), drop_path_rate_, is_training());
  }
  torch::Tensor gamma_1, gamma_2;

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  BeitAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(BeitBlock);

class BeitImpl : public BackboneImpl {
 public:
  BeitImpl(const std::string& name, const BeitConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c), grid_(c.img_size / c.patch_size) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " has no output_stride option (its features all have reduction " +
                                  std::to_string(c.patch_size) + "); got " + std::to_string(args.output_stride()));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
    auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
    proj_ = patch_embed->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.embed_dim, c.patch_size).stride(c.patch_size)));
    for (int64_t i = 0; i < c.depth; ++i)
      feature_info_.push_back({"blocks." + std::to_string(i), c.embed_dim, c.patch_size});
    const int64_t n_blocks = layers::last_feature_index(args, c.depth, name) + 1;
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), {c.depth}).front();
    blocks_ = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < n_blocks; ++i) blocks_->push_back(BeitBlock(c, drop_path_rates[static_cast<size_t>(i)]));
    if (args.features_only()) return;
    fc_norm_ = register_module("fc_norm", layer_norm(c.embed_dim));  // timm's avg pooling head
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
  int64_t num_prefix_tokens() const override { return 1; }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto t = embed(x);
    for (const auto& block : *blocks_) t = block->as<BeitBlock>()->forward(t);
    return classify(fc_norm_(t.slice(1, 1).mean(1)), head_);
  }

  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  std::vector<torch::Tensor> intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                           std::vector<torch::Tensor>* prefix_tokens) {
    layers::check_feature_indices(indices, static_cast<int64_t>(blocks_->size()), model_name());
    auto t = embed(x);
    std::vector<torch::Tensor> out;
    const auto b = x.size(0);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      t = blocks_[static_cast<size_t>(i)]->as<BeitBlock>()->forward(t);
      if (i != indices[out.size()]) continue;
      out.push_back(t.slice(1, 1).reshape({b, grid_, grid_, -1}).permute({0, 3, 1, 2}).contiguous());
      if (prefix_tokens) prefix_tokens->push_back(t.slice(1, 0, 1));
    }
    return out;
  }

  torch::Tensor embed(const torch::Tensor& x) {
    if (x.size(2) != cfg_.img_size || x.size(3) != cfg_.img_size)
      throw std::invalid_argument(model_name() + ": its relative position biases need a " +
                                  std::to_string(cfg_.img_size) + "x" + std::to_string(cfg_.img_size) + " input, got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    auto t = proj_(x).flatten(2).transpose(1, 2);
    return torch::cat({cls_token_.expand({x.size(0), -1, -1}), t}, 1);
  }

  BeitConfig cfg_;
  int64_t grid_;
  torch::Tensor cls_token_;
  nn::Conv2d proj_{nullptr};
  nn::ModuleList blocks_{nullptr};
  nn::LayerNorm fc_norm_{nullptr};
  nn::Linear head_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, BeitConfig>> models = {
      {"beit_base_patch16_224", {224, 16, 768, 12, 12, 0.1}},
      {"beit_base_patch16_384", {384, 16, 768, 12, 12, 0.1}},
      {"beit_large_patch16_224", {224, 16, 1024, 24, 16, 1e-5}},
      {"beit_large_patch16_384", {384, 16, 1024, 24, 16, 1e-5}},
      {"beit_large_patch16_512", {512, 16, 1024, 24, 16, 1e-5}},
      {"beitv2_base_patch16_224", {224, 16, 768, 12, 12, 1e-5, true}},
      {"beitv2_large_patch16_224", {224, 16, 1024, 24, 16, 1e-5, true}},
  };
  register_configs<BeitImpl>("beit", models, [](ModelEntry& e, const BeitConfig& c) {
    if (!c.imagenet_stats) e.mean = e.std = {0.5, 0.5, 0.5};
  });
}

}  // namespace beit
}  // namespace smp::timm
