// timm's EdgeNeXt (edgenext.py): ConvNeXt-style depthwise-conv blocks, each stage after the first
// ending in a split depthwise-conv + cross-covariance (channel) attention block. Any input size.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace edgenext {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct EdgeNextConfig {
  std::vector<int64_t> depths, dims;
  std::vector<int64_t> heads = {8, 8, 8, 8};
  bool downsample_block = false;  // the _rw variant: strided first block instead of a downsample layer
  bool conv_bias = true;
  bool overlap_stem = false;
};
const std::vector<int64_t> kGlobalBlocks = {0, 1, 1, 1}, kKernels = {3, 5, 7, 9}, kScales = {2, 2, 3, 4};
const std::vector<bool> kPosEmb = {false, true, false, false};
constexpr double kEps = 1e-6;
constexpr int64_t kExpand = 4;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(kEps)); }

nn::Conv2d dw_conv(int64_t in, int64_t out, int64_t k, int64_t stride, bool bias) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).stride(stride).padding((stride - 1 + k - 1) / 2).groups(in).bias(bias));
}

// Sine/cosine encoding of the normalised (y, x) grid, projected to the block width by a 1x1 conv.
class PosEncodingImpl : public nn::Module {
 public:
  explicit PosEncodingImpl(int64_t dim) {
    token_projection = register_module("token_projection", nn::Conv2d(nn::Conv2dOptions(kHidden * 2, dim, 1)));
  }
  torch::Tensor forward(int64_t b, int64_t h, int64_t w) {
    auto opts = torch::TensorOptions().device(token_projection->weight.device()).dtype(torch::kFloat32);
    const double eps = 1e-6, scale = 2 * M_PI;
    auto y = torch::arange(1, h + 1, opts).div(h + eps).mul(scale).view({1, h, 1, 1}).expand({b, h, w, 1});
    auto x = torch::arange(1, w + 1, opts).div(w + eps).mul(scale).view({1, 1, w, 1}).expand({b, h, w, 1});
    auto dim_t = torch::pow(10000.0, 2 * torch::div(torch::arange(kHidden, opts), 2, "floor") / kHidden);
    auto enc = [](const torch::Tensor& p) {
      return torch::stack({p.slice(3, 0, kHidden, 2).sin(), p.slice(3, 1, kHidden, 2).cos()}, 4).flatten(3);
    };
    auto pos = torch::cat({enc(y / dim_t), enc(x / dim_t)}, 3).permute({0, 3, 1, 2});
    return token_projection(pos.to(token_projection->weight.dtype()));
  }

 private:
  static constexpr int64_t kHidden = 32;
  nn::Conv2d token_projection{nullptr};
};
TORCH_MODULE(PosEncoding);

class ConvBlockImpl : public nn::Module {
 public:
  ConvBlockImpl(int64_t dim, int64_t dim_out, int64_t k, int64_t stride, bool bias, double drop_path_rate)
      : shortcut_after_dw_(stride > 1 || dim != dim_out), drop_path_rate_(drop_path_rate) {
    conv_dw = register_module("conv_dw", dw_conv(dim, dim_out, k, stride, bias));
    norm = register_module("norm", layer_norm(dim_out));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim_out, kExpand * dim_out)));
    gamma = register_parameter("gamma", torch::full({dim_out}, 1e-6));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv_dw(x);
    const auto& shortcut = shortcut_after_dw_ ? y : x;
    auto z = (gamma * mlp(norm(y.permute({0, 2, 3, 1})))).permute({0, 3, 1, 2});
    return shortcut + layers::drop_path(z, drop_path_rate_, is_training());
  }
  torch::Tensor gamma;

 private:
  bool shortcut_after_dw_;
  double drop_path_rate_;
  nn::Conv2d conv_dw{nullptr};
  nn::LayerNorm norm{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(ConvBlock);

// Attention across channels: softmax of the (head_dim x head_dim) cosine similarity of q and k over
// tokens, scaled by a learned per-head temperature.
class XcaImpl : public nn::Module {
 public:
  XcaImpl(int64_t dim, int64_t heads) : heads_(heads) {
    temperature = register_parameter("temperature", torch::ones({heads, 1, 1}));
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    auto t = qkv(x).reshape({b, n, 3, heads_, -1}).permute({2, 0, 3, 4, 1});
    auto norm = F::NormalizeFuncOptions().dim(-1);
    auto attn = torch::matmul(F::normalize(t[0], norm), F::normalize(t[1], norm).transpose(-2, -1)) * temperature;
    return proj(torch::matmul(attn.softmax(-1), t[2]).permute({0, 3, 1, 2}).reshape({b, n, c}));
  }
  torch::Tensor temperature;

 private:
  int64_t heads_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Xca);

class SplitTransposeBlockImpl : public nn::Module {
 public:
  SplitTransposeBlockImpl(int64_t dim, int64_t scales, int64_t heads, bool pos_emb, bool bias, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    const auto width = (dim + scales - 1) / scales;
    const auto num_convs = std::max<int64_t>(1, scales - 1);
    auto list = register_module("convs", nn::ModuleList());
    for (int64_t i = 0; i < num_convs; ++i) {
      convs.push_back(dw_conv(width, width, 3, 1, bias));
      list->push_back(convs.back());
    }
    if (pos_emb) pos_embd = register_module("pos_embd", PosEncoding(dim));
    norm_xca = register_module("norm_xca", layer_norm(dim));
    gamma_xca = register_parameter("gamma_xca", torch::full({dim}, 1e-6));
    xca = register_module("xca", Xca(dim, heads));
    norm = register_module("norm", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, kExpand * dim)));
    gamma = register_parameter("gamma", torch::full({dim}, 1e-6));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    // Res2Net-style hierarchy over channel chunks; the last chunk passes through.
    auto parts = x.chunk(static_cast<int64_t>(convs.size()) + 1, 1);
    std::vector<torch::Tensor> outs;
    torch::Tensor sp = parts[0];
    for (size_t i = 0; i < convs.size(); ++i) {
      if (i > 0) sp = sp + parts[i];
      sp = convs[i](sp);
      outs.push_back(sp);
    }
    outs.push_back(parts.back());
    auto y = torch::cat(outs, 1);
    const auto b = y.size(0), c = y.size(1), h = y.size(2), w = y.size(3);
    auto t = y.reshape({b, c, h * w}).permute({0, 2, 1});
    if (pos_embd) t = t + pos_embd(b, h, w).reshape({b, -1, h * w}).permute({0, 2, 1});
    t = t + layers::drop_path(gamma_xca * xca(norm_xca(t)), drop_path_rate_, is_training());
    auto z = (gamma * mlp(norm(t.reshape({b, h, w, c})))).permute({0, 3, 1, 2});
    return x + layers::drop_path(z, drop_path_rate_, is_training());
  }
  torch::Tensor gamma_xca, gamma;

 private:
  double drop_path_rate_;
  std::vector<nn::Conv2d> convs;
  PosEncoding pos_embd{nullptr};
  nn::LayerNorm norm_xca{nullptr}, norm{nullptr};
  Xca xca{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SplitTransposeBlock);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, int64_t stride, size_t i, const std::vector<double>& rates,
            const EdgeNextConfig& c) {
    if (!c.downsample_block && stride > 1) {
      downsample = register_module("downsample", nn::Sequential(layers::LayerNorm2d(in, kEps),
                                                                nn::Conv2d(nn::Conv2dOptions(in, out, 2).stride(2).bias(
                                                                    c.conv_bias))));
      in = out;
    }
    blocks = register_module("blocks", nn::Sequential());
    const auto depth = static_cast<int64_t>(rates.size());
    for (int64_t j = 0; j < depth; ++j) {
      const auto r = rates[static_cast<size_t>(j)];
      if (j < depth - kGlobalBlocks[i])
        blocks->push_back(
            ConvBlock(in, out, kKernels[i], c.downsample_block && j == 0 ? stride : 1, c.conv_bias, r));
      else
        blocks->push_back(SplitTransposeBlock(in, kScales[i], c.heads[i], kPosEmb[i], c.conv_bias, r));
      in = out;
    }
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks->forward(downsample ? downsample->forward(x) : x); }

 private:
  nn::Sequential downsample{nullptr}, blocks{nullptr};
};
TORCH_MODULE(Stage);

class EdgeNextImpl : public BackboneImpl {
 public:
  EdgeNextImpl(const std::string& name, const EdgeNextConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const int64_t last = layers::last_feature_index(args, 4, name);
    const int64_t k = c.overlap_stem ? 9 : 4;
    stem_ = register_module(
        "stem", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.dims[0], k)
                                              .stride(4)
                                              .padding(c.overlap_stem ? k / 2 : 0)
                                              .bias(c.conv_bias)),
                               layers::LayerNorm2d(c.dims[0], kEps)));
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    int64_t in = c.dims[0];
    for (size_t i = 0; i < 4; ++i) {
      const int64_t stride = i > 0 ? 2 : 1;
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[i], int64_t{4} << i});
      if (static_cast<int64_t>(i) <= last) stages_->push_back(Stage(in, c.dims[i], stride, i, rates[i], c));
      in = c.dims[i];
    }
    if (args.features_only()) return;
    // timm's NormMlpClassifierHead: average pool, LayerNorm2d, fc.
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", layers::LayerNorm2d(in, kEps));
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(in, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto pooled = head_norm_(stages_->forward(stem_->forward(x)).mean({2, 3}, true)).flatten(1);
    return classify(pooled, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  layers::LayerNorm2d head_norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> long_depths{3, 3, 9, 3};
  const std::vector<std::pair<std::string, EdgeNextConfig>> models = {
      {"edgenext_xx_small", {{2, 2, 6, 2}, {24, 48, 88, 168}, {4, 4, 4, 4}}},
      {"edgenext_x_small", {long_depths, {32, 64, 100, 192}, {4, 4, 4, 4}}},
      {"edgenext_small", {long_depths, {48, 96, 160, 304}}},
      {"edgenext_base", {long_depths, {80, 160, 288, 584}}},
      {"edgenext_small_rw", {long_depths, {48, 96, 192, 384}, {8, 8, 8, 8}, true, false, true}},
  };
  register_configs<EdgeNextImpl>("edgenext", models);
}

}  // namespace edgenext
}  // namespace smp::timm
