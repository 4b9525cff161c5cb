// timm's CSATv2 (csatv2.py): a stem that works in the frequency domain (8x8 block DCT of the
// YCbCr image, zigzag-ordered and normalised by fixed ImageNet statistics, then 1x1 convs per colour
// channel), ConvNeXt-V2-style blocks gated by a tiny spatial attention map, and transformer blocks in
// the last two stages. NCHW throughout. RGB input only (the stem converts to YCbCr).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/grn.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace csatv2 {
namespace {

struct CsatConfig {
  std::vector<int64_t> dims, depths, transformer_depths;
};
constexpr int64_t kBlock = 8;  // DCT block size

// Per-channel (Y, Cb, Cr) mean and variance of the zigzag-ordered DCT coefficients, as timm ships them.
const double kDctMean[3 * 64] = {
    932.42657, -0.00260, 0.33415, -0.02840, 0.00003, -0.02792, -0.00183, 0.00006,
    0.00032, 0.03402, -0.00571, 0.00020, 0.00006, -0.00038, -0.00558, -0.00116,
    -0.00000, -0.00047, -0.00008, -0.00030, 0.00942, 0.00161, -0.00009, -0.00006,
    -0.00014, -0.00035, 0.00001, -0.00220, 0.00033, -0.00002, -0.00003, -0.00020,
    0.00007, -0.00000, 0.00005, 0.00293, -0.00004, 0.00006, 0.00019, 0.00004,
    0.00006, -0.00015, -0.00002, 0.00007, 0.00010, -0.00004, 0.00008, 0.00000,
    0.00008, -0.00001, 0.00015, 0.00002, 0.00007, 0.00003, 0.00004, -0.00001,
    0.00004, -0.00000, 0.00002, -0.00000, -0.00008, -0.00000, -0.00003, 0.00003,
    962.34735, -0.00428, 0.09835, 0.00152, -0.00009, 0.00312, -0.00141, -0.00001,
    -0.00013, 0.01050, 0.00065, 0.00006, -0.00000, 0.00003, 0.00264, 0.00000,
    0.00001, 0.00007, -0.00006, 0.00003, 0.00341, 0.00163, 0.00004, 0.00003,
    -0.00001, 0.00008, -0.00000, 0.00090, 0.00018, -0.00006, -0.00001, 0.00007,
    -0.00003, -0.00001, 0.00006, 0.00084, -0.00000, -0.00001, 0.00000, 0.00004,
    -0.00001, -0.00002, 0.00000, 0.00001, 0.00002, 0.00001, 0.00004, 0.00011,
    0.00000, -0.00003, 0.00011, -0.00002, 0.00001, 0.00001, 0.00001, 0.00001,
    -0.00007, -0.00003, 0.00001, 0.00000, 0.00001, 0.00002, 0.00001, 0.00000,
    1053.16101, -0.00213, -0.09207, 0.00186, 0.00013, 0.00034, -0.00119, 0.00002,
    0.00011, -0.00984, 0.00046, -0.00007, -0.00001, -0.00005, 0.00180, 0.00042,
    0.00002, -0.00010, 0.00004, 0.00003, -0.00301, 0.00125, -0.00002, -0.00003,
    -0.00001, -0.00001, -0.00001, 0.00056, 0.00021, 0.00001, -0.00001, 0.00002,
    -0.00001, -0.00001, 0.00005, -0.00070, -0.00002, -0.00002, 0.00005, -0.00004,
    -0.00000, 0.00002, -0.00002, 0.00001, 0.00000, -0.00003, 0.00004, 0.00007,
    0.00001, 0.00000, 0.00013, -0.00000, 0.00000, 0.00002, -0.00000, -0.00001,
    -0.00004, -0.00003, 0.00000, 0.00001, -0.00001, 0.00001, -0.00000, 0.00000,
};
const double kDctVar[3 * 64] = {
    270372.37500, 6287.10645, 5974.94043, 1653.10889, 1463.91748, 1832.58997, 755.92468, 692.41528,
    648.57184, 641.46881, 285.79288, 301.62100, 380.43405, 349.84027, 374.15891, 190.30960,
    190.76746, 221.64578, 200.82646, 145.87979, 126.92046, 62.14622, 67.75562, 102.42001,
    129.74922, 130.04631, 103.12189, 97.76417, 53.17402, 54.81048, 73.48712, 81.04342,
    69.35100, 49.06024, 33.96053, 37.03279, 20.48858, 24.94830, 33.90822, 44.54912,
    47.56363, 40.03160, 30.43313, 22.63899, 26.53739, 26.57114, 21.84404, 17.41557,
    15.18253, 10.69678, 11.24111, 12.97229, 15.08971, 15.31646, 8.90409, 7.44213,
    6.66096, 6.97719, 4.17834, 3.83882, 4.51073, 2.36646, 2.41363, 1.48266,
    18839.21094, 321.70932, 300.15259, 77.47830, 76.02293, 89.04748, 33.99642, 34.74807,
    32.12333, 28.19588, 12.04675, 14.26871, 18.45779, 16.59588, 15.67892, 7.37718,
    8.56312, 10.28946, 9.41013, 6.69090, 5.16453, 2.55186, 3.03073, 4.66765,
    5.85418, 5.74644, 4.33702, 3.66948, 1.95107, 2.26034, 3.06380, 3.50705,
    3.06359, 2.19284, 1.54454, 1.57860, 0.97078, 1.13941, 1.48653, 1.89996,
    1.95544, 1.64950, 1.24754, 0.93677, 1.09267, 1.09516, 0.94163, 0.78966,
    0.72489, 0.50841, 0.50909, 0.55664, 0.63111, 0.64125, 0.38847, 0.33378,
    0.30918, 0.33463, 0.20875, 0.19298, 0.21903, 0.13380, 0.13444, 0.09554,
    17127.39844, 292.81421, 271.45209, 66.64056, 63.60253, 76.35437, 28.06587, 27.84831,
    25.96656, 23.60370, 9.99173, 11.34992, 14.46955, 12.92553, 12.69353, 5.91537,
    6.60187, 7.90891, 7.32825, 5.32785, 4.29660, 2.13459, 2.44135, 3.66021,
    4.50335, 4.38959, 3.34888, 2.97181, 1.60633, 1.77010, 2.35118, 2.69018,
    2.38189, 1.74596, 1.26014, 1.31684, 0.79327, 0.92046, 1.17670, 1.47609,
    1.50914, 1.28725, 0.99898, 0.74832, 0.85736, 0.85800, 0.74663, 0.63508,
    0.58748, 0.41098, 0.41121, 0.44663, 0.50277, 0.51519, 0.31729, 0.27336,
    0.25399, 0.27241, 0.17353, 0.16255, 0.18440, 0.11602, 0.11511, 0.08450,
};

// Orthonormal DCT-II matrix M with M[n][k] = c_k cos(pi k (2n + 1) / 2K): coefficients = x @ M.
torch::Tensor dct_matrix(int64_t k) {
  auto n = torch::arange(k, torch::kFloat64).unsqueeze(1), f = torch::arange(k, torch::kFloat64).unsqueeze(0);
  auto m = 2.0 * torch::cos(M_PI * f * (2.0 * n + 1.0) / (2.0 * k));
  m.select(1, 0).mul_(std::sqrt(1.0 / (4.0 * k)));
  m.slice(1, 1).mul_(std::sqrt(1.0 / (2.0 * k)));
  return m.to(torch::kFloat32);
}

// Zigzag scan of a rows x cols block: anti-diagonals in turn, alternating direction.
std::vector<int64_t> zigzag(int64_t rows, int64_t cols) {
  std::vector<std::vector<int64_t>> diagonals(static_cast<size_t>(rows + cols - 1));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      auto& d = diagonals[static_cast<size_t>(i + j)];
      if ((i + j) % 2 == 0) d.insert(d.begin(), i * cols + j);
      else d.push_back(i * cols + j);
    }
  std::vector<int64_t> order;
  for (const auto& d : diagonals) order.insert(order.end(), d.begin(), d.end());
  return order;
}

class LearnableDct2dImpl : public nn::Module {
 public:
  explicit LearnableDct2dImpl(int64_t out) {
    // Output channels split 6:1:1 between Y, Cb and Cr.
    const auto unit = out / 8;
    conv_y = register_module("conv_y", nn::Conv2d(nn::Conv2dOptions(kBlock * kBlock, 6 * unit, 1)));
    conv_cb = register_module("conv_cb", nn::Conv2d(nn::Conv2dOptions(kBlock * kBlock, unit, 1)));
    conv_cr = register_module("conv_cr", nn::Conv2d(nn::Conv2dOptions(kBlock * kBlock, unit, 1)));
    // timm keeps the DCT matrix as a persistent buffer (stem_dct.transform.transform.weights), applied as
    // F.linear(x, weights), i.e. x @ weights^T.
    auto transform = register_module("transform", std::make_shared<nn::Module>());
    auto inner = transform->register_module("transform", std::make_shared<nn::Module>());
    dct_weights_ = inner->register_buffer("weights", dct_matrix(kBlock).t().contiguous());
    order_ = torch::tensor(zigzag(kBlock, kBlock), torch::kLong);
    mean_ = torch::tensor(std::vector<double>(kDctMean, kDctMean + 3 * 64), torch::kFloat32).view({3, 64});
    std_ = torch::tensor(std::vector<double>(kDctVar, kDctVar + 3 * 64), torch::kFloat32).view({3, 64}).sqrt() + 1e-8;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const auto opts = x.options();
    // Back from ImageNet normalisation to [0, 255], then RGB -> YCbCr.
    auto img = (x * torch::tensor({0.229, 0.224, 0.225}, opts).view({3, 1, 1}) +
                torch::tensor({0.485, 0.456, 0.406}, opts).view({3, 1, 1})) * 255.0;
    auto r = img.select(1, 0), g = img.select(1, 1), bl = img.select(1, 2);
    auto y = r * 0.299 + g * 0.587 + bl * 0.114;
    auto ycc = torch::stack({y, 0.564 * (bl - y) + 128.0, 0.713 * (r - y) + 128.0}, 1);
    auto blocks = ycc.reshape({b, c, h / kBlock, kBlock, w / kBlock, kBlock}).permute({0, 2, 4, 1, 3, 5});
    const auto m = dct_weights_.t();
    // Separable 2-D DCT over the last two dims (rows, then columns).
    auto coef = torch::matmul(torch::matmul(blocks, m).transpose(-1, -2), m).transpose(-1, -2);
    coef = coef.reshape({-1, c, kBlock * kBlock}).index_select(2, order_.to(x.device()));
    coef = (coef - mean_.to(x.device(), x.scalar_type())) / std_.to(x.device(), x.scalar_type());
    coef = coef.reshape({b, h / kBlock, w / kBlock, c, -1}).permute({0, 3, 4, 1, 2}).contiguous();
    return torch::cat({conv_y(coef.select(1, 0)), conv_cb(coef.select(1, 1)), conv_cr(coef.select(1, 2))}, 1);
  }

 private:
  nn::Conv2d conv_y{nullptr}, conv_cb{nullptr}, conv_cr{nullptr};
  torch::Tensor dct_weights_, order_, mean_, std_;
};
TORCH_MODULE(LearnableDct2d);

// Depthwise 3x3 conv added to its input, applied to [B, N, C] tokens of an h x w grid.
class PosConvImpl : public nn::Module {
 public:
  explicit PosConvImpl(int64_t dim) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim)));
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    auto map = x.transpose(1, 2).reshape({x.size(0), x.size(2), h, w});
    return (proj(map) + map).flatten(2).transpose(1, 2);
  }

 private:
  nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PosConv);

nn::LayerNorm layer_norm(int64_t dim, double eps = 1e-5) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(eps)); }

// Single-channel transformer over the 7x7 attention map.
class SpatialTransformerBlockImpl : public nn::Module {
 public:
  SpatialTransformerBlockImpl() {
    pos_embed = register_module("pos_embed", PosConv(1));
    norm1 = register_module("norm1", layer_norm(1));
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(1, 3).bias(false)));
    norm2 = register_module("norm2", layer_norm(1));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(1, 4)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto t = pos_embed(norm1(x.flatten(2).transpose(1, 2)), h, w);
    auto parts = qkv(t).unbind(-1);  // each [B, N]
    // timm multiplies the [B, N] maps as matrices, so the softmax runs across the batch.
    auto attn = torch::matmul(parts[0], parts[1].transpose(-1, -2)).softmax(-1);
    auto y = x + torch::matmul(attn, parts[2]).unsqueeze(-1).transpose(1, 2).reshape({b, c, h, w});
    return y + mlp(norm2(y.flatten(2).transpose(1, 2))).transpose(1, 2).reshape({b, c, h, w});
  }

 private:
  PosConv pos_embed{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  nn::Linear qkv{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SpatialTransformerBlock);

// A 7x7 gating map from the channel mean and max.
class SpatialAttentionImpl : public nn::Module {
 public:
  SpatialAttentionImpl() {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(2, 1, 7).padding(3)));
    attn = register_module("attn", SpatialTransformerBlock());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto stats = torch::cat({x.mean(1, true), x.amax(1, true)}, 1);
    return attn(conv(F::adaptive_avg_pool2d(stats, F::AdaptiveAvgPool2dFuncOptions({7, 7}))));
  }

 private:
  nn::Conv2d conv{nullptr};
  SpatialTransformerBlock attn{nullptr};
};
TORCH_MODULE(SpatialAttention);

// ConvNeXt-V2 block (dwconv 7x7, LN, MLP with GRN) whose branch is gated by the upsampled attention map.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    dwconv = register_module("dwconv", nn::Conv2d(nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)));
    norm = register_module("norm", layer_norm(dim, 1e-6));
    pwconv1 = register_module("pwconv1", nn::Linear(dim, 4 * dim));
    grn = register_module("grn", layers::GlobalResponseNorm(4 * dim, 1e-6, true));
    pwconv2 = register_module("pwconv2", nn::Linear(4 * dim, dim));
    attn = register_module("attn", SpatialAttention());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = pwconv2(grn(torch::gelu(pwconv1(norm(dwconv(x).permute({0, 2, 3, 1})))))).permute({0, 3, 1, 2});
    auto gate = F::interpolate(attn(y), F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{y.size(2), y.size(3)})
                                            .mode(torch::kBilinear)
                                            .align_corners(true));
    return x + layers::drop_path(y * gate, drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  nn::Conv2d dwconv{nullptr};
  nn::LayerNorm norm{nullptr};
  nn::Linear pwconv1{nullptr}, pwconv2{nullptr};
  layers::GlobalResponseNorm grn{nullptr};
  SpatialAttention attn{nullptr};
};
TORCH_MODULE(Block);

// Multi-head attention with 8 heads of width 32, whatever the block width (timm's attn_head_dim).
class AttentionImpl : public nn::Module {
 public:
  explicit AttentionImpl(int64_t dim) {
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, kHeads * kHeadDim * 3).bias(false)));
    proj = register_module("proj", nn::Linear(kHeads * kHeadDim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), n = x.size(1);
    auto t = qkv(x).reshape({b, n, 3, kHeads, kHeadDim}).permute({2, 0, 3, 1, 4});
    auto a = torch::matmul(t[0] * std::pow(double(kHeadDim), -0.5), t[1].transpose(-2, -1)).softmax(-1);
    return proj(torch::matmul(a, t[2]).transpose(1, 2).reshape({b, n, kHeads * kHeadDim}));
  }

 private:
  static constexpr int64_t kHeads = 8, kHeadDim = 32;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

class TransformerBlockImpl : public nn::Module {
 public:
  explicit TransformerBlockImpl(int64_t dim) {
    pos_embed = register_module("pos_embed", PosConv(dim));
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", Attention(dim));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto t = x.flatten(2).transpose(1, 2);
    t = t + attn(pos_embed(norm1(t), h, w));
    t = t + mlp(norm2(t));
    return t.transpose(1, 2).reshape({b, c, h, w});
  }

 private:
  PosConv pos_embed{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(TransformerBlock);

class CsatV2Impl : public BackboneImpl {
 public:
  CsatV2Impl(const std::string& name, const CsatConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    if (args.in_chans() != 3)
      throw std::invalid_argument(name + ": the DCT stem converts RGB to YCbCr, so in_chans must be 3 (got " +
                                  std::to_string(args.in_chans()) + ")");
    const auto n = static_cast<int64_t>(c.dims.size());
    feature_info_.push_back({"stem_dct", c.dims[0], kBlock});
    for (int64_t i = 0; i < n; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[static_cast<size_t>(i)], kBlock << i});
    const int64_t last = layers::last_feature_index(args, n + 1, name);
    stem_ = register_module("stem_dct", LearnableDct2d(c.dims[0]));
    // Stochastic depth over the convolutional blocks only (transformer blocks get none).
    std::vector<int64_t> conv_depths;
    for (int64_t i = 0; i < n; ++i) conv_depths.push_back(c.depths[static_cast<size_t>(i)] - c.transformer_depths[static_cast<size_t>(i)]);
    const auto rates = layers::drop_path_rates(args.drop_path_rate(), conv_depths);
    stages_ = register_module("stages", nn::ModuleList());
    for (int64_t i = 0; i < last; ++i) {
      const auto u = static_cast<size_t>(i);
      const auto dim = c.dims[u];
      nn::Sequential stage;
      if (i > 0) stage->push_back(nn::Conv2d(nn::Conv2dOptions(c.dims[u - 1], dim, 2).stride(2)));
      for (double rate : rates[u]) stage->push_back(Block(dim, rate));
      for (int64_t j = 0; j < c.transformer_depths[u]; ++j) stage->push_back(TransformerBlock(dim));
      if (i < n - 1) stage->push_back(layers::LayerNorm2d(dim, 1e-6));
      stages_->push_back(stage);
    }
    if (args.features_only()) return;
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", layers::LayerNorm2d(c.dims.back(), 1e-6));
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(c.dims.back(), args.num_classes()));
  }

  std::vector<int64_t> default_out_indices() const override { return {1, 2, 3, 4}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    if (indices[0] == 0) out.push_back(y);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<nn::Sequential>()->forward(y);
      if (i + 1 == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem(x);
    for (const auto& stage : *stages_) y = stage->as<nn::Sequential>()->forward(y);
    auto pooled = head_norm_(y.mean({2, 3}, true)).flatten(1);
    return classify(pooled, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem_dct.conv_y"; }

 private:
  torch::Tensor stem(const torch::Tensor& x) {
    if (x.size(2) % kBlock != 0 || x.size(3) % kBlock != 0)
      throw std::invalid_argument(model_name() + ": input height and width must be divisible by 8, got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
    return stem_(x);
  }

  LearnableDct2d stem_{nullptr};
  nn::ModuleList stages_{nullptr};
  layers::LayerNorm2d head_norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, CsatConfig>> models = {
      {"csatv2", {{32, 72, 168, 386}, {2, 2, 8, 6}, {0, 0, 2, 2}}},
      {"csatv2_21m", {{48, 96, 224, 448}, {3, 3, 10, 8}, {0, 0, 4, 3}}},
  };
  register_configs<CsatV2Impl>("csatv2", models);
}

}  // namespace csatv2
}  // namespace smp::timm
