// timm's TinyViT (tiny_vit.py): a conv stem and an MBConv first stage, then stages of window
// attention (learned per-offset biases, LeViT style) followed by a depthwise conv and an MLP. Any
// input size (windows are zero-padded).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace tiny_vit {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct TinyVitConfig {
  std::vector<int64_t> dims, depths, num_heads, windows;
  int64_t num_classes = 21841;  // timm's default tag: the in22k-distilled weights
};
constexpr int64_t kMbconvExpand = 4;
constexpr int64_t kMlpRatio = 4;

// Conv (no bias) + BatchNorm, named conv/bn.
class ConvNormImpl : public nn::Module {
 public:
  ConvNormImpl(int64_t in, int64_t out, int64_t k = 1, int64_t stride = 1, int64_t groups = 1) {
    conv = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn(conv(x)); }

 private:
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvNorm);

class PatchEmbedImpl : public nn::Module {
 public:
  PatchEmbedImpl(int64_t in, int64_t out) {
    conv1 = register_module("conv1", ConvNorm(in, out / 2, 3, 2));
    conv2 = register_module("conv2", ConvNorm(out / 2, out, 3, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv2(torch::gelu(conv1(x))); }

 private:
  ConvNorm conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(PatchEmbed);

class MBConvImpl : public nn::Module {
 public:
  MBConvImpl(int64_t dim, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    const auto mid = dim * kMbconvExpand;
    conv1 = register_module("conv1", ConvNorm(dim, mid));
    conv2 = register_module("conv2", ConvNorm(mid, mid, 3, 1, mid));
    conv3 = register_module("conv3", ConvNorm(mid, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv3(torch::gelu(conv2(torch::gelu(conv1(x)))));
    return torch::gelu(layers::drop_path(y, drop_path_rate_, is_training()) + x);
  }

 private:
  double drop_path_rate_;
  ConvNorm conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(MBConv);

class PatchMergingImpl : public nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out) {
    conv1 = register_module("conv1", ConvNorm(dim, out));
    conv2 = register_module("conv2", ConvNorm(out, out, 3, 2, out));
    conv3 = register_module("conv3", ConvNorm(out, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv3(torch::gelu(conv2(torch::gelu(conv1(x))))); }

 private:
  ConvNorm conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(PatchMerging);

// LayerNorm first, then the MLP.
class NormMlpImpl : public nn::Module {
 public:
  NormMlpImpl(int64_t dim, int64_t hidden) {
    norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(norm(x)))); }

 private:
  nn::LayerNorm norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(NormMlp);

// Self-attention over a window x window grid with one learned bias per head and (|dy|, |dx|) offset.
class AttentionImpl : public nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads, int64_t window) : heads_(heads), key_dim_(dim / heads) {
    norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
    const auto n = window * window;
    attention_biases = register_parameter("attention_biases", torch::zeros({heads, n}));
    // timm keeps this index as a non-persistent buffer: plain data here, not part of checkpoints.
    auto pos = torch::arange(n, torch::kLong);
    auto row = torch::div(pos, window, "floor"), col = torch::remainder(pos, window);
    idx_ = (row.unsqueeze(1) - row.unsqueeze(0)).abs() * window + (col.unsqueeze(1) - col.unsqueeze(0)).abs();
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1);
    auto parts = qkv(norm(x)).view({b, n, heads_, -1}).split(key_dim_, 3);
    auto q = parts[0].permute({0, 2, 1, 3}), k = parts[1].permute({0, 2, 1, 3}), v = parts[2].permute({0, 2, 1, 3});
    auto attn = torch::matmul(q * std::pow(static_cast<double>(key_dim_), -0.5), k.transpose(-2, -1));
    attn = attn + attention_biases.index({torch::indexing::Slice(), idx_.to(x.device())});
    return proj(torch::matmul(attn.softmax(-1), v).transpose(1, 2).reshape({b, n, -1}));
  }
  torch::Tensor attention_biases;

 private:
  int64_t heads_, key_dim_;
  torch::Tensor idx_;
  nn::LayerNorm norm{nullptr};
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

// NHWC in and out.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, int64_t window, double drop_path_rate)
      : window_(window), drop_path_rate_(drop_path_rate) {
    attn = register_module("attn", Attention(dim, heads, window));
    mlp = register_module("mlp", NormMlp(dim, dim * kMlpRatio));
    local_conv = register_module("local_conv", ConvNorm(dim, dim, 3, 1, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3), ws = window_;
    torch::Tensor y;
    if (h == ws && w == ws) {
      y = attn(x.reshape({b, h * w, c})).view({b, h, w, c});
    } else {
      const auto pad_b = (ws - h % ws) % ws, pad_r = (ws - w % ws) % ws;
      y = (pad_b || pad_r) ? F::pad(x, F::PadFuncOptions({0, 0, 0, pad_r, 0, pad_b})) : x;
      const auto ph = h + pad_b, pw = w + pad_r, nh = ph / ws, nw = pw / ws;
      y = y.view({b, nh, ws, nw, ws, c}).transpose(2, 3).reshape({b * nh * nw, ws * ws, c});
      y = attn(y).view({b, nh, nw, ws, ws, c}).transpose(2, 3).reshape({b, ph, pw, c});
      if (pad_b || pad_r) y = y.slice(1, 0, h).slice(2, 0, w);
    }
    y = x + layers::drop_path(y, drop_path_rate_, is_training());
    auto t = local_conv(y.permute({0, 3, 1, 2})).reshape({b, c, h * w}).transpose(1, 2);
    t = t + layers::drop_path(mlp(t), drop_path_rate_, is_training());
    return t.reshape({b, h, w, c});
  }

 private:
  int64_t window_;
  double drop_path_rate_;
  Attention attn{nullptr};
  NormMlp mlp{nullptr};
  ConvNorm local_conv{nullptr};
};
TORCH_MODULE(Block);

// Stage 0: MBConv blocks only. Later stages: PatchMerging downsample, then attention blocks.
class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, int64_t heads, int64_t window, const std::vector<double>& rates, bool first)
      : first_(first) {
    if (!first) downsample = register_module("downsample", PatchMerging(in, out));
    blocks = register_module("blocks", nn::Sequential());
    for (double r : rates) {
      if (first)
        blocks->push_back(MBConv(out, r));
      else
        blocks->push_back(Block(out, heads, window, r));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (first_) return blocks->forward(x);
    return blocks->forward(downsample(x).permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
  }

 private:
  bool first_;
  PatchMerging downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(Stage);

class TinyVitImpl : public BackboneImpl {
 public:
  TinyVitImpl(const std::string& name, const TinyVitConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    patch_embed_ = register_module("patch_embed", PatchEmbed(args.in_chans(), c.dims[0]));
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[u], int64_t{4} << i});
      if (i <= last)
        stages_->push_back(Stage(i == 0 ? c.dims[0] : c.dims[u - 1], c.dims[u], c.num_heads[u], c.windows[u], rates[u],
                                 i == 0));
    }
    if (args.features_only()) return;
    // timm's NormMlpClassifierHead: average pool, LayerNorm2d (eps 1e-5), fc.
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", layers::LayerNorm2d(c.dims.back(), 1e-5));
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(c.dims.back(), args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = patch_embed_(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto pooled = head_norm_(stages_->forward(patch_embed_(x)).mean({2, 3}, true)).flatten(1);
    return classify(pooled, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "patch_embed.conv1.conv"; }

 private:
  PatchEmbed patch_embed_{nullptr};
  nn::Sequential stages_{nullptr};
  layers::LayerNorm2d head_norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> depths{2, 2, 6, 2};
  const std::vector<int64_t> big{96, 192, 384, 576}, big_heads{3, 6, 12, 18};
  const std::vector<std::pair<std::string, TinyVitConfig>> models = {
      {"tiny_vit_5m_224", {{64, 128, 160, 320}, depths, {2, 4, 5, 10}, {7, 7, 14, 7}}},
      {"tiny_vit_11m_224", {{64, 128, 256, 448}, depths, {2, 4, 8, 14}, {7, 7, 14, 7}}},
      {"tiny_vit_21m_224", {big, depths, big_heads, {7, 7, 14, 7}}},
      {"tiny_vit_21m_384", {big, depths, big_heads, {12, 12, 24, 12}, 1000}},
      {"tiny_vit_21m_512", {big, depths, big_heads, {16, 16, 32, 16}, 1000}},
  };
  register_configs<TinyVitImpl>("tiny_vit", models,
                                 [](ModelEntry& entry, const TinyVitConfig& c) { entry.num_classes = c.num_classes; });
}

}  // namespace tiny_vit
}  // namespace smp::timm
