// timm's DaViT (davit.py): each block pair is window self-attention over tokens followed by
// attention across channels (linear in the number of tokens), both with depthwise-conv position
// encodings. NCHW between blocks; any input size (padded to the stem stride and the windows).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/window.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace davit {
namespace {

struct DaVitConfig {
  std::vector<int64_t> depths, dims, num_heads;
  int64_t window = 7;
  int64_t down_kernel = 2;
  bool channel_attn_v2 = false;  // Florence-2 towers: q/k roles of the channel attention swapped
  bool named_blocks = false;     // Florence-2 towers: blocks named spatial_block / channel_block
  int64_t num_classes = 1000;
};
constexpr double kEps = 1e-5;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(kEps)); }

// Depthwise 3x3 conv added to its input.
class ConvPosEncImpl : public nn::Module {
 public:
  explicit ConvPosEncImpl(int64_t dim) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + proj(x); }

 private:
  nn::Conv2d proj{nullptr};
};
TORCH_MODULE(ConvPosEnc);

// The tail both block kinds share: cpe2 on the NCHW map, then the pre-norm MLP over tokens.
torch::Tensor cpe_mlp_tail(const torch::Tensor& tokens, int64_t h, int64_t w, ConvPosEnc& cpe2, nn::LayerNorm& norm2,
                           layers::Mlp& mlp, double rate, bool training) {
  const auto b = tokens.size(0), c = tokens.size(2);
  auto x = cpe2(tokens.transpose(1, 2).reshape({b, c, h, w}));
  auto t = x.flatten(2).transpose(1, 2);
  t = t + layers::drop_path(mlp(norm2(t)), rate, training);
  return t.transpose(1, 2).reshape({b, c, h, w});
}

class WindowAttentionImpl : public nn::Module {
 public:
  WindowAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [nW * B, N, C]
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto attn = torch::matmul(t[0] * std::pow(static_cast<double>(hd), -0.5), t[1].transpose(-2, -1)).softmax(-1);
    return proj(torch::matmul(attn, t[2]).transpose(1, 2).reshape({b, n, c}));
  }

 private:
  int64_t heads_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(WindowAttention);

class SpatialBlockImpl : public nn::Module {
 public:
  SpatialBlockImpl(int64_t dim, int64_t heads, int64_t window, double drop_path_rate)
      : window_(window), drop_path_rate_(drop_path_rate) {
    cpe1 = register_module("cpe1", ConvPosEnc(dim));
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", WindowAttention(dim, heads));
    cpe2 = register_module("cpe2", ConvPosEnc(dim));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NCHW
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto shortcut = cpe1(x).flatten(2).transpose(1, 2);  // [B, N, C]
    auto y = layers::shifted_window_attention(norm1(shortcut).view({b, h, w, c}), window_, window_, 0, 0,
                                              [this](const torch::Tensor& windows, const torch::Tensor&) {
                                                return attn(windows);
                                              });
    auto t = shortcut + layers::drop_path(y.reshape({b, h * w, c}), drop_path_rate_, is_training());
    return cpe_mlp_tail(t, h, w, cpe2, norm2, mlp, drop_path_rate_, is_training());
  }

 private:
  int64_t window_;
  double drop_path_rate_;
  ConvPosEnc cpe1{nullptr}, cpe2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SpatialBlock);

// Attention among channels within each head group: a [head_dim x head_dim] map per head.
class ChannelAttentionImpl : public nn::Module {
 public:
  ChannelAttentionImpl(int64_t dim, int64_t heads, bool v2) : heads_(heads), v2_(v2) {
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, N, C]
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    torch::Tensor out;
    if (v2_) {  // queries scaled by the token count, attention q^T k applied to v
      auto attn = torch::matmul((t[0] * std::pow(static_cast<double>(n), -0.5)).transpose(-1, -2), t[1]).softmax(-1);
      out = torch::matmul(attn, t[2].transpose(-1, -2)).transpose(-1, -2);
    } else {  // keys scaled by the head width, attention k^T v applied to q
      auto attn = torch::matmul((t[1] * std::pow(static_cast<double>(hd), -0.5)).transpose(-1, -2), t[2]).softmax(-1);
      out = torch::matmul(attn, t[0].transpose(-1, -2)).transpose(-1, -2);
    }
    return proj(out.transpose(1, 2).reshape({b, n, c}));
  }

 private:
  int64_t heads_;
  bool v2_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(ChannelAttention);

class ChannelBlockImpl : public nn::Module {
 public:
  ChannelBlockImpl(int64_t dim, int64_t heads, bool v2, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    cpe1 = register_module("cpe1", ConvPosEnc(dim));
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", ChannelAttention(dim, heads, v2));
    cpe2 = register_module("cpe2", ConvPosEnc(dim));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NCHW
    const auto h = x.size(2), w = x.size(3);
    auto t = cpe1(x).flatten(2).transpose(1, 2);
    t = t + layers::drop_path(attn(norm1(t)), drop_path_rate_, is_training());
    return cpe_mlp_tail(t, h, w, cpe2, norm2, mlp, drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  ConvPosEnc cpe1{nullptr}, cpe2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ChannelAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(ChannelBlock);

// LayerNorm2d then a stride-2 conv; an even kernel pads right/bottom to a kernel multiple first.
class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out, int64_t kernel) : kernel_(kernel) {
    norm = register_module("norm", layers::LayerNorm2d(in, kEps));
    conv = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(2).padding(kernel % 2 == 0 ? 0 : kernel / 2)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = norm(x);
    if (kernel_ % 2 == 0) {
      const auto pad_r = (kernel_ - y.size(3) % kernel_) % kernel_, pad_b = (kernel_ - y.size(2) % kernel_) % kernel_;
      if (pad_r || pad_b) y = F::pad(y, F::PadFuncOptions({0, pad_r, 0, pad_b}));
    }
    return conv(y);
  }

 private:
  int64_t kernel_;
  layers::LayerNorm2d norm{nullptr};
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample);

// One spatial block then one channel block (timm's inner Sequential, indexed or named).
class DualBlockImpl : public nn::Module {
 public:
  DualBlockImpl(int64_t dim, int64_t heads, double drop_path_rate, const DaVitConfig& c) {
    spatial = register_module(c.named_blocks ? "spatial_block" : "0", SpatialBlock(dim, heads, c.window, drop_path_rate));
    channel = register_module(c.named_blocks ? "channel_block" : "1",
                              ChannelBlock(dim, heads, c.channel_attn_v2, drop_path_rate));
  }
  torch::Tensor forward(const torch::Tensor& x) { return channel(spatial(x)); }

 private:
  SpatialBlock spatial{nullptr};
  ChannelBlock channel{nullptr};
};
TORCH_MODULE(DualBlock);

class DaVitStageImpl : public nn::Module {
 public:
  DaVitStageImpl(int64_t in, int64_t out, bool downsample_first, const std::vector<double>& drop_path_rates,
                 int64_t heads, const DaVitConfig& c) {
    if (downsample_first) downsample = register_module("downsample", Downsample(in, out, c.down_kernel));
    blocks = register_module("blocks", nn::Sequential());
    for (double rate : drop_path_rates) blocks->push_back(DualBlock(out, heads, rate, c));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  Downsample downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(DaVitStage);

class DaVitImpl : public BackboneImpl {
 public:
  DaVitImpl(const std::string& name, const DaVitConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    stem_conv_ = stem->register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.dims[0], 7).stride(4).padding(3)));
    stem_norm_ = stem->register_module("norm", layers::LayerNorm2d(c.dims[0], kEps));
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    int64_t dim = c.dims[0];
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[u], int64_t{4} << i});
      if (i <= last) stages_->push_back(DaVitStage(dim, c.dims[u], i > 0, drop_path_rates[u], c.num_heads[u], c));
      dim = c.dims[u];
    }
    if (args.features_only()) return;
    // timm's NormMlpClassifierHead without hidden layer: pool, LayerNorm2d, fc.
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", layers::LayerNorm2d(dim, kEps));
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(dim, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<DaVitStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto pooled = head_norm_(stages_->forward(stem(x)).mean({2, 3}, true)).flatten(1);
    return classify(pooled, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv"; }

 private:
  torch::Tensor stem(const torch::Tensor& x) {
    const auto pad_r = (4 - x.size(3) % 4) % 4, pad_b = (4 - x.size(2) % 4) % 4;
    auto y = (pad_r || pad_b) ? F::pad(x, F::PadFuncOptions({0, pad_r, 0, pad_b})) : x;
    return stem_norm_(stem_conv_(y));
  }

  nn::Conv2d stem_conv_{nullptr};
  layers::LayerNorm2d stem_norm_{nullptr}, head_norm_{nullptr};
  nn::Sequential stages_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> short_depths{1, 1, 3, 1}, depths{1, 1, 9, 1};
  auto dims = [](int64_t d) { return std::vector<int64_t>{d, 2 * d, 4 * d, 8 * d}; };
  auto heads = [](int64_t h) { return std::vector<int64_t>{h, 2 * h, 4 * h, 8 * h}; };
  // Florence-2 vision towers: 12-token windows, 3x3 downsampling, v2 channel attention, no classifier.
  auto florence = [&](int64_t d, int64_t h) { return DaVitConfig{depths, dims(d), heads(h), 12, 3, true, true, 0}; };
  const std::vector<std::pair<std::string, DaVitConfig>> models = {
      {"davit_tiny", {short_depths, dims(96), heads(3)}},
      {"davit_small", {depths, dims(96), heads(3)}},
      {"davit_base", {depths, dims(128), heads(4)}},
      {"davit_large", {depths, dims(192), heads(6)}},
      {"davit_huge", {depths, dims(256), heads(8)}},
      {"davit_giant", {{1, 1, 12, 3}, dims(384), heads(12)}},
      {"davit_base_fl", florence(128, 4)},
      {"davit_huge_fl", florence(256, 8)},
  };
  register_configs<DaVitImpl>("davit", models,
                              [](ModelEntry& entry, const DaVitConfig& c) { entry.num_classes = c.num_classes; });
}

}  // namespace davit
}  // namespace smp::timm
