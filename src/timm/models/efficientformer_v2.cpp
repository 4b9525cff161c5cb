// timm's EfficientFormer-V2 (efficientformer_v2.py): a conv network of 1x1-3x3dw-1x1 MLP blocks whose
// last two stages end in 2d attention blocks (learned offset biases, talking heads) over the fixed
// grid of a 224x224 input; the last downsample also attends. Fixed input size, as in timm.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"

namespace smp::timm {

namespace efficientformer_v2 {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

struct EfficientFormerV2Config {
  std::vector<int64_t> depths, dims;
  std::vector<std::vector<int64_t>> mlp_ratios;  // per block
  int64_t num_vit;                               // attention blocks at the end of stages 2 and 3
};
constexpr int64_t kImgSize = 224;
constexpr double kLayerScaleInit = 1e-5;

// Conv (bias) + BatchNorm, optionally GELU (timm's ConvNorm / ConvNormAct); named conv/bn.
class ConvNormImpl : public nn::Module {
 public:
  ConvNormImpl(int64_t in, int64_t out, int64_t k = 1, int64_t stride = 1, int64_t groups = 1, bool act = false)
      : act_(act) {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, k)
                                                  .stride(stride)
                                                  .padding((stride - 1 + k - 1) / 2)
                                                  .groups(groups)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn(conv(x));
    return act_ ? torch::gelu(y) : y;
  }

 private:
  bool act_;
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvNorm);

// |dy| * cols + |dx| between query positions (every `q_step`-th of the grid) and all key positions.
torch::Tensor bias_index(int64_t res, int64_t q_step) {
  auto grid = [](int64_t n, int64_t step) {
    auto r = torch::arange(0, n, step, torch::kLong);
    auto g = torch::meshgrid({r, r}, "ij");
    return std::make_pair(g[0].flatten(), g[1].flatten());
  };
  auto [qy, qx] = grid(res, q_step);
  auto [ky, kx] = grid(res, 1);
  return (qy.unsqueeze(1) - ky.unsqueeze(0)).abs() * res + (qx.unsqueeze(1) - kx.unsqueeze(0)).abs();
}

class Attention2dImpl : public nn::Module {
 public:
  // `res`: the block's grid; `stride` > 1 attends on a strided copy and upsamples the result.
  Attention2dImpl(int64_t dim, int64_t res, int64_t stride) {
    if (stride > 1) {
      stride_conv = register_module("stride_conv", ConvNorm(dim, dim, 3, stride, dim));
      res = (res + stride - 1) / stride;
      stride_ = stride;
    }
    res_ = res;
    const auto kh = kKeyDim * kHeads, dh = kKeyDim * kAttnRatio * kHeads;
    q = register_module("q", ConvNorm(dim, kh));
    k = register_module("k", ConvNorm(dim, kh));
    v = register_module("v", ConvNorm(dim, dh));
    v_local = register_module("v_local", ConvNorm(dh, dh, 3, 1, dh));
    talking_head1 = register_module("talking_head1", nn::Conv2d(nn::Conv2dOptions(kHeads, kHeads, 1)));
    talking_head2 = register_module("talking_head2", nn::Conv2d(nn::Conv2dOptions(kHeads, kHeads, 1)));
    proj = register_module("proj", ConvNorm(dh, dim));
    attention_biases = register_parameter("attention_biases", torch::zeros({kHeads, res * res}));
    idx_ = bias_index(res, 1);  // timm's non-persistent buffer: not part of checkpoints
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto b = x.size(0), n = res_ * res_;
    if (stride_conv) x = stride_conv(x);
    if (x.size(2) * x.size(3) != n)
      throw std::invalid_argument("EfficientFormer-V2 attention works on the fixed grid of a 224x224 input");
    auto qh = q(x).reshape({b, kHeads, -1, n}).permute({0, 1, 3, 2});
    auto kh = k(x).reshape({b, kHeads, -1, n});
    auto vv = v(x);
    auto local = v_local(vv);
    auto vh = vv.reshape({b, kHeads, -1, n}).permute({0, 1, 3, 2});
    auto attn = torch::matmul(qh, kh) * std::pow(static_cast<double>(kKeyDim), -0.5);
    attn = attn + attention_biases.index({torch::indexing::Slice(), idx_.to(x.device())});
    attn = talking_head2(talking_head1(attn).softmax(-1));
    auto y = torch::matmul(attn, vh).transpose(2, 3).reshape({b, -1, res_, res_}) + local;
    if (stride_ > 1)
      y = F::interpolate(y, F::InterpolateFuncOptions()
                                .scale_factor(std::vector<double>{double(stride_), double(stride_)})
                                .mode(torch::kBilinear)
                                .align_corners(false));
    return proj(torch::gelu(y));
  }
  torch::Tensor attention_biases;

 private:
  static constexpr int64_t kKeyDim = 32, kHeads = 8, kAttnRatio = 4;
  int64_t res_ = 0, stride_ = 1;
  torch::Tensor idx_;
  ConvNorm stride_conv{nullptr}, q{nullptr}, k{nullptr}, v{nullptr}, v_local{nullptr}, proj{nullptr};
  nn::Conv2d talking_head1{nullptr}, talking_head2{nullptr};
};
TORCH_MODULE(Attention2d);

// Query from a strided depthwise conv plus a stride-2 subsample, projected.
class LocalGlobalQueryImpl : public nn::Module {
 public:
  LocalGlobalQueryImpl(int64_t in, int64_t out) {
    local = register_module("local", nn::Conv2d(nn::Conv2dOptions(in, in, 3).stride(2).padding(1).groups(in)));
    proj = register_module("proj", ConvNorm(in, out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    using torch::indexing::Slice;
    return proj(local(x) + x.index({Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)}));
  }

 private:
  nn::Conv2d local{nullptr};
  ConvNorm proj{nullptr};
};
TORCH_MODULE(LocalGlobalQuery);

class Attention2dDownsampleImpl : public nn::Module {
 public:
  Attention2dDownsampleImpl(int64_t dim, int64_t out, int64_t res) : res_(res), res2_((res + 1) / 2) {
    const auto kh = kKeyDim * kHeads, dh = kKeyDim * kAttnRatio * kHeads;
    q = register_module("q", LocalGlobalQuery(dim, kh));
    k = register_module("k", ConvNorm(dim, kh));
    v = register_module("v", ConvNorm(dim, dh));
    v_local = register_module("v_local", ConvNorm(dh, dh, 3, 2, dh));
    proj = register_module("proj", ConvNorm(dh, out));
    attention_biases = register_parameter("attention_biases", torch::zeros({kHeads, res * res}));
    idx_ = bias_index(res, 2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = res_ * res_, n2 = res2_ * res2_;
    if (x.size(2) * x.size(3) != n)
      throw std::invalid_argument("EfficientFormer-V2 attention works on the fixed grid of a 224x224 input");
    auto qh = q(x).reshape({b, kHeads, -1, n2}).permute({0, 1, 3, 2});
    auto kh = k(x).reshape({b, kHeads, -1, n});
    auto vv = v(x);
    auto local = v_local(vv);
    auto vh = vv.reshape({b, kHeads, -1, n}).permute({0, 1, 3, 2});
    auto attn = torch::matmul(qh, kh) * std::pow(static_cast<double>(kKeyDim), -0.5);
    attn = (attn + attention_biases.index({torch::indexing::Slice(), idx_.to(x.device())})).softmax(-1);
    auto y = torch::matmul(attn, vh).transpose(2, 3).reshape({b, -1, res2_, res2_}) + local;
    return proj(torch::gelu(y));
  }
  torch::Tensor attention_biases;

 private:
  static constexpr int64_t kKeyDim = 16, kHeads = 8, kAttnRatio = 4;
  int64_t res_, res2_;
  torch::Tensor idx_;
  LocalGlobalQuery q{nullptr};
  ConvNorm k{nullptr}, v{nullptr}, v_local{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention2dDownsample);

class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out, int64_t res, bool use_attn) {
    conv = register_module("conv", ConvNorm(in, out, 3, 2));
    if (use_attn) attn = register_module("attn", Attention2dDownsample(in, out, res));
  }
  torch::Tensor forward(const torch::Tensor& x) { return attn ? attn(x) + conv(x) : conv(x); }

 private:
  ConvNorm conv{nullptr};
  Attention2dDownsample attn{nullptr};
};
TORCH_MODULE(Downsample);

class MlpImpl : public nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden) {
    fc1 = register_module("fc1", ConvNorm(dim, hidden, 1, 1, 1, true));
    mid = register_module("mid", ConvNorm(hidden, hidden, 3, 1, hidden, true));
    fc2 = register_module("fc2", ConvNorm(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(mid(fc1(x))); }

 private:
  ConvNorm fc1{nullptr}, mid{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t mlp_ratio, int64_t res, int64_t stride, bool use_attn, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    if (use_attn) {
      token_mixer = register_module("token_mixer", Attention2d(dim, res, stride));
      ls1 = register_module("ls1", layers::LayerScale2d(dim, kLayerScaleInit));
    }
    mlp = register_module("mlp", Mlp(dim, dim * mlp_ratio));
    ls2 = register_module("ls2", layers::LayerScale2d(dim, kLayerScaleInit));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (token_mixer) x = x + layers::drop_path(ls1(token_mixer(x)), drop_path_rate_, is_training());
    return x + layers::drop_path(ls2(mlp(x)), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  Attention2d token_mixer{nullptr};
  layers::LayerScale2d ls1{nullptr}, ls2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, int64_t i, int64_t res, const std::vector<int64_t>& ratios,
            const std::vector<double>& rates, int64_t num_vit) {
    if (i > 0) {
      downsample = register_module("downsample", Downsample(in, out, res, i >= 3));
      res = (res + 1) / 2;
    }
    blocks = register_module("blocks", nn::Sequential());
    const auto depth = static_cast<int64_t>(rates.size());
    for (int64_t j = 0; j < depth; ++j) {
      const auto u = static_cast<size_t>(j);
      blocks->push_back(Block(out, ratios.size() == 1 ? ratios[0] : ratios[u], res, i == 2 ? 2 : 1,
                              i >= 2 && j > depth - num_vit - 1, rates[u]));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks->forward(downsample ? downsample(x) : x); }

 private:
  Downsample downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(Stage);

class EfficientFormerV2Impl : public BackboneImpl {
 public:
  EfficientFormerV2Impl(const std::string& name, const EfficientFormerV2Config& c, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const int64_t last = layers::last_feature_index(args, 4, name);
    stem_ = register_module("stem", nn::Sequential());
    stem_->push_back("conv1", ConvNorm(args.in_chans(), c.dims[0] / 2, 3, 2, 1, true));
    stem_->push_back("conv2", ConvNorm(c.dims[0] / 2, c.dims[0], 3, 2, 1, true));
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    int64_t stride = 4;
    for (int64_t i = 0; i < 4; ++i) {
      const auto u = static_cast<size_t>(i);
      const int64_t res = (kImgSize + stride - 1) / stride;
      if (i > 0) stride *= 2;
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[u], stride});
      if (i <= last)
        stages_->push_back(Stage(i == 0 ? c.dims[0] : c.dims[u - 1], c.dims[u], i, res, c.mlp_ratios[u], rates[u],
                                 c.num_vit));
    }
    if (args.features_only()) return;
    norm_ = register_module("norm", nn::BatchNorm2d(c.dims.back()));
    if (args.num_classes() > 0) {
      head_ = register_module("head", nn::Linear(c.dims.back(), args.num_classes()));
      head_dist_ = register_module("head_dist", nn::Linear(c.dims.back(), args.num_classes()));
    }
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
    auto pooled = layers::dropout(norm_(stages_->forward(stem_->forward(x))).mean({2, 3}), head_drop_rate(),
                                  is_training());
    // The distilled model averages its two classifiers at inference.
    return head_ ? (head_(pooled) + head_dist_(pooled)) / 2 : pooled;
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.conv1.conv"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
  nn::Linear head_{nullptr}, head_dist_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, EfficientFormerV2Config>> models = {
      {"efficientformerv2_s0", {{2, 2, 6, 4}, {32, 48, 96, 176}, {{4}, {4}, {4, 3, 3, 3, 4, 4}, {4, 3, 3, 4}}, 2}},
      {"efficientformerv2_s1",
       {{3, 3, 9, 6}, {32, 48, 120, 224}, {{4}, {4}, {4, 4, 3, 3, 3, 3, 4, 4, 4}, {4, 4, 3, 3, 4, 4}}, 2}},
      {"efficientformerv2_s2",
       {{4, 4, 12, 8},
        {32, 64, 144, 288},
        {{4}, {4}, {4, 4, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4}, {4, 4, 3, 3, 3, 3, 4, 4}},
        4}},
      {"efficientformerv2_l",
       {{5, 5, 15, 10},
        {40, 80, 192, 384},
        {{4}, {4}, {4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4}, {4, 4, 4, 3, 3, 3, 3, 4, 4, 4}},
        6}},
  };
  register_configs<EfficientFormerV2Impl>("efficientformer_v2", models);
}

}  // namespace efficientformer_v2
}  // namespace smp::timm
