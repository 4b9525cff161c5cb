// timm's MetaFormer baselines (metaformer.py): PoolFormer v1/v2, ConvFormer and CAFormer.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace metaformer {
namespace {

enum class Mixer { kPooling, kSepConv, kAttention };
enum class NormKind { kGroup1, kGroup1NoBias, kLayer2dNoBias, kLayerNoBias };

struct MetaFormerConfig {
  std::vector<int64_t> depths, dims;
  std::vector<Mixer> mixers;     // per stage
  std::vector<NormKind> norms;   // per stage
  bool downsample_norm = true;   // LayerNorm2dNoBias in stem/downsampling; PoolFormer v1 has none
  std::string mlp_act = "starrelu";
  bool mlp_bias = false;
  double layer_scale = 0.0;      // > 0: layer scale with this init (PoolFormer v1)
  bool res_scale = true;         // res scale on stages 3 and 4 (v2 models)
  bool mlp_head = true;
};

// A learned scalar pair: scale * relu(x)^2 + bias.
class StarReLUImpl : public nn::Module {
 public:
  StarReLUImpl() {
    scale = register_parameter("scale", torch::ones({1}));
    bias = register_parameter("bias", torch::zeros({1}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return scale * torch::relu(x).pow(2) + bias; }
  torch::Tensor scale, bias;
};
TORCH_MODULE(StarReLU);

nn::AnyModule make_act(const std::string& name) {
  if (name == "starrelu") return nn::AnyModule(StarReLU());
  return nn::AnyModule(nn::GELU());
}

// The family's norms: GroupNorm with one group, or LayerNorm over channels of NCHW maps or over
// the last dim of tokens; the "NoBias" variants have only a weight and eps 1e-6.
class MetaNormImpl : public nn::Module {
 public:
  MetaNormImpl(NormKind kind, int64_t dim) : kind_(kind) {
    weight = register_parameter("weight", torch::ones({dim}));
    if (kind == NormKind::kGroup1) bias = register_parameter("bias", torch::zeros({dim}));
    eps_ = kind == NormKind::kGroup1 ? 1e-5 : 1e-6;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    switch (kind_) {
      case NormKind::kGroup1:
      case NormKind::kGroup1NoBias:
        return F::group_norm(x, F::GroupNormFuncOptions(1).weight(weight).bias(bias).eps(eps_));
      case NormKind::kLayer2dNoBias:
        return F::layer_norm(x.permute({0, 2, 3, 1}), F::LayerNormFuncOptions({x.size(1)}).weight(weight).eps(eps_))
            .permute({0, 3, 1, 2});
      case NormKind::kLayerNoBias:
        break;
    }
    return F::layer_norm(x, F::LayerNormFuncOptions({x.size(-1)}).weight(weight).eps(eps_));
  }
  torch::Tensor weight, bias;

 private:
  NormKind kind_;
  double eps_;
};
TORCH_MODULE(MetaNorm);

// Per-channel scale of NCHW maps (dim, 1, 1) or tokens (dim).
class ScaleImpl : public nn::Module {
 public:
  ScaleImpl(int64_t dim, double init, bool nchw) : nchw_(nchw) {
    scale = register_parameter("scale", torch::full({dim}, init));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x * (nchw_ ? scale.view({-1, 1, 1}) : scale); }
  torch::Tensor scale;

 private:
  bool nchw_;
};
TORCH_MODULE(Scale);

class SepConvImpl : public nn::Module {
 public:
  explicit SepConvImpl(int64_t dim) {
    const int64_t mid = 2 * dim;
    pwconv1 = register_module("pwconv1", nn::Conv2d(nn::Conv2dOptions(dim, mid, 1).bias(false)));
    act1 = register_module("act1", StarReLU());
    dwconv = register_module("dwconv", nn::Conv2d(nn::Conv2dOptions(mid, mid, 7).padding(3).groups(mid).bias(false)));
    pwconv2 = register_module("pwconv2", nn::Conv2d(nn::Conv2dOptions(mid, dim, 1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return pwconv2(dwconv(act1(pwconv1(x)))); }

 private:
  nn::Conv2d pwconv1{nullptr}, dwconv{nullptr}, pwconv2{nullptr};
  StarReLU act1{nullptr};
};
TORCH_MODULE(SepConv);

class MixerAttentionImpl : public nn::Module {
 public:
  explicit MixerAttentionImpl(int64_t dim) : heads_(std::max<int64_t>(1, dim / kHeadDim)) {
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, heads_ * kHeadDim * 3).bias(false)));
    proj = register_module("proj", nn::Linear(nn::LinearOptions(heads_ * kHeadDim, dim).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1);
    auto t = qkv(x).reshape({b, n, 3, heads_, kHeadDim}).permute({2, 0, 3, 1, 4});
    auto attn = (torch::matmul(t[0], t[1].transpose(-2, -1)) * std::pow(static_cast<double>(kHeadDim), -0.5)).softmax(-1);
    return proj(torch::matmul(attn, t[2]).transpose(1, 2).reshape({b, n, -1}));
  }

 private:
  static constexpr int64_t kHeadDim = 32;
  int64_t heads_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(MixerAttention);

// fc1 -> act -> fc2, as 1x1 convs on NCHW maps or Linear layers on tokens.
class MetaMlpImpl : public nn::Module {
 public:
  MetaMlpImpl(int64_t dim, const MetaFormerConfig& c, bool nchw) {
    if (nchw) {
      fc1 = nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(dim, 4 * dim, 1).bias(c.mlp_bias)));
      fc2 = nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(4 * dim, dim, 1).bias(c.mlp_bias)));
    } else {
      fc1 = nn::AnyModule(nn::Linear(nn::LinearOptions(dim, 4 * dim).bias(c.mlp_bias)));
      fc2 = nn::AnyModule(nn::Linear(nn::LinearOptions(4 * dim, dim).bias(c.mlp_bias)));
    }
    register_module("fc1", fc1.ptr());
    act = make_act(c.mlp_act);
    register_module("act", act.ptr());
    register_module("fc2", fc2.ptr());
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2.forward(act.forward(fc1.forward(x))); }

 private:
  nn::AnyModule fc1, act, fc2;
};
TORCH_MODULE(MetaMlp);

class MetaFormerBlockImpl : public nn::Module {
 public:
  MetaFormerBlockImpl(int64_t dim, Mixer mixer, NormKind norm, const MetaFormerConfig& c, bool res_scale, bool nchw,
                      double drop_path_rate)
      : mixer_kind_(mixer), drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", MetaNorm(norm, dim));
    if (mixer == Mixer::kSepConv) token_mixer = nn::AnyModule(SepConv(dim));
    if (mixer == Mixer::kAttention) token_mixer = nn::AnyModule(MixerAttention(dim));
    if (!token_mixer.is_empty()) register_module("token_mixer", token_mixer.ptr());
    if (c.layer_scale > 0) layer_scale1 = register_module("layer_scale1", Scale(dim, c.layer_scale, nchw));
    if (res_scale) res_scale1 = register_module("res_scale1", Scale(dim, 1.0, nchw));
    norm2 = register_module("norm2", MetaNorm(norm, dim));
    mlp = register_module("mlp", MetaMlp(dim, c, nchw));
    if (c.layer_scale > 0) layer_scale2 = register_module("layer_scale2", Scale(dim, c.layer_scale, nchw));
    if (res_scale) res_scale2 = register_module("res_scale2", Scale(dim, 1.0, nchw));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = norm1(x);
    if (mixer_kind_ == Mixer::kPooling) {
      y = F::avg_pool2d(y, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false)) - y;
    } else {
      y = token_mixer.forward(y);
    }
    y = layers::drop_path(y, drop_path_rate_, is_training());
    x = (res_scale1 ? res_scale1(x) : x) + (layer_scale1 ? layer_scale1(y) : y);
    y = layers::drop_path(mlp(norm2(x)), drop_path_rate_, is_training());
    return (res_scale2 ? res_scale2(x) : x) + (layer_scale2 ? layer_scale2(y) : y);
  }

 private:
  Mixer mixer_kind_;
  double drop_path_rate_;
  MetaNorm norm1{nullptr}, norm2{nullptr};
  nn::AnyModule token_mixer;
  MetaMlp mlp{nullptr};
  Scale layer_scale1{nullptr}, layer_scale2{nullptr}, res_scale1{nullptr}, res_scale2{nullptr};
};
TORCH_MODULE(MetaFormerBlock);

class DownsamplingImpl : public nn::Module {
 public:
  DownsamplingImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool norm_first, bool use_norm)
      : norm_first_(norm_first) {
    if (use_norm) norm = register_module("norm", MetaNorm(NormKind::kLayer2dNoBias, norm_first ? in : out));
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad)));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (norm && norm_first_) x = norm(x);
    x = conv(x);
    return norm && !norm_first_ ? norm(x) : x;
  }

 private:
  bool norm_first_;
  MetaNorm norm{nullptr};
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsampling);

class MetaFormerStageImpl : public nn::Module {
 public:
  // One block per stochastic depth rate.
  MetaFormerStageImpl(int64_t in, int64_t out, size_t index, const MetaFormerConfig& c,
                      const std::vector<double>& drop_path_rates)
      : nchw_(c.mixers[index] != Mixer::kAttention) {
    if (in != out) downsample = register_module("downsample", Downsampling(in, out, 3, 2, 1, true, c.downsample_norm));
    blocks = register_module("blocks", nn::Sequential());
    const bool res_scale = c.res_scale && index >= 2;
    for (const double rate : drop_path_rates)
      blocks->push_back(MetaFormerBlock(out, c.mixers[index], c.norms[index], c, res_scale, nchw_, rate));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    if (nchw_) return blocks->forward(x);
    const auto b = x.size(0), ch = x.size(1), h = x.size(2), w = x.size(3);
    auto t = blocks->forward(x.reshape({b, ch, -1}).transpose(1, 2));
    return t.transpose(1, 2).reshape({b, ch, h, w});
  }

 private:
  bool nchw_;
  Downsampling downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(MetaFormerStage);

class MetaFormerImpl : public BackboneImpl {
 public:
  // timm's drop_rate acts in the MLP head only (before it and before its last layer); its linear head
  // has no dropout, so the base's head_drop_rate() is 0 there.
  MetaFormerImpl(const std::string& name, const MetaFormerConfig& c, const ModelArgs& args)
      : BackboneImpl(name, c.mlp_head ? args : ModelArgs(args).drop_rate(0.0)) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.dims.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    stem = register_module("stem", Downsampling(args.in_chans(), c.dims[0], 7, 4, 2, false, c.downsample_norm));
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i < n; ++i) {
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[static_cast<size_t>(i)], int64_t{4} << i});
      if (i <= last)
        stages->push_back(MetaFormerStage(i == 0 ? c.dims[0] : c.dims[static_cast<size_t>(i - 1)],
                                          c.dims[static_cast<size_t>(i)], static_cast<size_t>(i), c,
                                          drop_path_rates[static_cast<size_t>(i)]));
    }
    if (args.features_only()) return;
    const auto dim = c.dims.back();
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)));
    if (args.num_classes() <= 0) return;
    if (c.mlp_head) {
      auto fc = head->register_module("fc", std::make_shared<nn::Module>());
      fc1_ = fc->register_module("fc1", nn::Linear(dim, 4 * dim));
      mlp_norm_ = fc->register_module("norm", nn::LayerNorm(nn::LayerNormOptions({4 * dim}).eps(1e-6)));
      fc2_ = fc->register_module("fc2", nn::Linear(4 * dim, args.num_classes()));
    } else {
      fc2_ = head->register_module("fc", nn::Linear(dim, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages[static_cast<size_t>(i)]->as<MetaFormerStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = head_norm_(stages->forward(stem(x)).mean({2, 3}));
    // The MLP head: dropout, fc1, squared ReLU, norm, then classify() for the second dropout and fc2.
    if (fc1_) y = mlp_norm_(torch::relu(fc1_(layers::dropout(y, head_drop_rate(), is_training()))).pow(2));
    return classify(y, fc2_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv"; }

 private:
  Downsampling stem{nullptr};
  nn::Sequential stages{nullptr};
  nn::LayerNorm head_norm_{nullptr}, mlp_norm_{nullptr};
  nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

}  // namespace

void register_family() {
  auto v1 = [](std::vector<int64_t> depths, std::vector<int64_t> dims, double ls) {
    MetaFormerConfig c{std::move(depths), std::move(dims), std::vector<Mixer>(4, Mixer::kPooling),
                       std::vector<NormKind>(4, NormKind::kGroup1)};
    c.downsample_norm = false;
    c.mlp_act = "gelu";
    c.mlp_bias = true;
    c.layer_scale = ls;
    c.res_scale = false;
    c.mlp_head = false;
    return c;
  };
  auto v2 = [](std::vector<int64_t> depths, std::vector<int64_t> dims) {
    MetaFormerConfig c{std::move(depths), std::move(dims), std::vector<Mixer>(4, Mixer::kPooling),
                       std::vector<NormKind>(4, NormKind::kGroup1NoBias)};
    c.mlp_head = false;
    return c;
  };
  auto conv = [](std::vector<int64_t> depths, std::vector<int64_t> dims) {
    return MetaFormerConfig{std::move(depths), std::move(dims), std::vector<Mixer>(4, Mixer::kSepConv),
                            std::vector<NormKind>(4, NormKind::kLayer2dNoBias)};
  };
  auto ca = [](std::vector<int64_t> depths, std::vector<int64_t> dims) {
    return MetaFormerConfig{std::move(depths), std::move(dims),
                            {Mixer::kSepConv, Mixer::kSepConv, Mixer::kAttention, Mixer::kAttention},
                            {NormKind::kLayer2dNoBias, NormKind::kLayer2dNoBias, NormKind::kLayerNoBias,
                             NormKind::kLayerNoBias}};
  };
  const std::vector<int64_t> s{64, 128, 320, 512}, m{96, 192, 384, 768};
  const std::vector<std::pair<std::string, MetaFormerConfig>> models = {
      {"poolformer_s12", v1({2, 2, 6, 2}, s, 1e-5)},
      {"poolformer_s24", v1({4, 4, 12, 4}, s, 1e-5)},
      {"poolformer_s36", v1({6, 6, 18, 6}, s, 1e-6)},
      {"poolformer_m36", v1({6, 6, 18, 6}, m, 1e-6)},
      {"poolformer_m48", v1({8, 8, 24, 8}, m, 1e-6)},
      {"poolformerv2_s12", v2({2, 2, 6, 2}, s)},
      {"poolformerv2_s24", v2({4, 4, 12, 4}, s)},
      {"poolformerv2_s36", v2({6, 6, 18, 6}, s)},
      {"poolformerv2_m36", v2({6, 6, 18, 6}, m)},
      {"poolformerv2_m48", v2({8, 8, 24, 8}, m)},
      {"convformer_s18", conv({3, 3, 9, 3}, s)},
      {"convformer_s36", conv({3, 12, 18, 3}, s)},
      {"convformer_m36", conv({3, 12, 18, 3}, {96, 192, 384, 576})},
      {"convformer_b36", conv({3, 12, 18, 3}, {128, 256, 512, 768})},
      {"caformer_s18", ca({3, 3, 9, 3}, s)},
      {"caformer_s36", ca({3, 12, 18, 3}, s)},
      {"caformer_m36", ca({3, 12, 18, 3}, {96, 192, 384, 576})},
      {"caformer_b36", ca({3, 12, 18, 3}, {128, 256, 512, 768})},
  };
  register_configs<MetaFormerImpl>("metaformer", models);
}

}  // namespace metaformer
}  // namespace smp::timm
