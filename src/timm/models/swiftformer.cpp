// SwiftFormer (timm's swiftformer.py): a two-conv stem, then four stages of depthwise-conv encoder
// blocks, each stage ending in a block with efficient additive attention; strided conv embeddings
// between stages.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace swiftformer {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

torch::Tensor act(const torch::Tensor& x) { return torch::gelu(x); }

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).groups(groups));
}

// Per-channel scale ("gamma", shape [dim, 1, 1]).
torch::Tensor layer_scale(nn::Module& owner, const std::string& name, int64_t dim, double init) {
  auto holder = owner.register_module(name, std::make_shared<nn::Module>());
  return holder->register_parameter("gamma", torch::full({dim, 1, 1}, init));
}

// Depthwise 3x3 + BN, then a pointwise MLP (GELU), layer-scaled residual: timm's ConvEncoder and
// LocalRepresentation (hidden = dim) share this shape.
class ConvEncoderImpl : public nn::Module {
 public:
  ConvEncoderImpl(int64_t dim, int64_t hidden, double drop_path) : drop_path_(drop_path) {
    dwconv = register_module("dwconv", conv(dim, dim, 3, 1, 1, dim));
    norm = register_module("norm", nn::BatchNorm2d(dim));
    pwconv1 = register_module("pwconv1", conv(dim, hidden, 1));
    pwconv2 = register_module("pwconv2", conv(hidden, dim, 1));
    gamma = layer_scale(*this, "layer_scale", dim, 1.0);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = pwconv2(act(pwconv1(norm(dwconv(x))))) * gamma;
    return x + layers::drop_path(y, drop_path_, is_training());
  }

 private:
  double drop_path_;
  nn::Conv2d dwconv{nullptr}, pwconv1{nullptr}, pwconv2{nullptr};
  nn::BatchNorm2d norm{nullptr};
  torch::Tensor gamma;
};
TORCH_MODULE(ConvEncoder);

// Additive attention: a learned vector scores the normalised queries, the score-weighted global
// query modulates the keys.
class AdditiveAttentionImpl : public nn::Module {
 public:
  explicit AdditiveAttentionImpl(int64_t dim) : scale_(1.0 / std::sqrt(static_cast<double>(dim))) {
    to_query = register_module("to_query", nn::Linear(dim, dim));
    to_key = register_module("to_key", nn::Linear(dim, dim));
    w_g = register_parameter("w_g", torch::zeros({dim, 1}));
    proj = register_module("proj", nn::Linear(dim, dim));
    final_ = register_module("final", nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
    auto t = x.flatten(2).permute({0, 2, 1});
    const auto norm_last = F::NormalizeFuncOptions().dim(-1);
    auto q = F::normalize(to_query(t), norm_last);
    auto k = F::normalize(to_key(t), norm_last);
    auto attn = F::normalize(torch::matmul(q, w_g) * scale_, F::NormalizeFuncOptions().dim(1));
    auto g = (attn * q).sum(1, true);
    auto out = proj(g * k) + q;
    return final_(out).permute({0, 2, 1}).reshape({b, -1, h, w});
  }

 private:
  double scale_;
  nn::Linear to_query{nullptr}, to_key{nullptr}, proj{nullptr}, final_{nullptr};
  torch::Tensor w_g;
};
TORCH_MODULE(AdditiveAttention);

class MlpImpl : public nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden) {
    norm1 = register_module("norm1", nn::BatchNorm2d(dim));
    fc1 = register_module("fc1", conv(dim, hidden, 1));
    fc2 = register_module("fc2", conv(hidden, dim, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(act(fc1(norm1(x)))); }

 private:
  nn::BatchNorm2d norm1{nullptr};
  nn::Conv2d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, double drop_path) : drop_path_(drop_path) {
    local = register_module("local_representation", ConvEncoder(dim, dim, 0.0));
    attn = register_module("attn", AdditiveAttention(dim));
    linear = register_module("linear", Mlp(dim, 4 * dim));
    gamma1 = layer_scale(*this, "layer_scale_1", dim, 1e-5);
    gamma2 = layer_scale(*this, "layer_scale_2", dim, 1e-5);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = local(x);
    y = y + layers::drop_path(attn(y) * gamma1, drop_path_, is_training());
    return y + layers::drop_path(linear(y) * gamma2, drop_path_, is_training());
  }

 private:
  double drop_path_;
  ConvEncoder local{nullptr};
  AdditiveAttention attn{nullptr};
  Mlp linear{nullptr};
  torch::Tensor gamma1, gamma2;
};
TORCH_MODULE(Block);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t prev, int64_t dim, bool downsample, const std::vector<double>& dpr) {
    if (downsample) {
      auto ds = register_module("downsample", std::make_shared<nn::Module>());
      down_proj = ds->register_module("proj", conv(prev, dim, 3, 2, 1));
      down_norm = ds->register_module("norm", nn::BatchNorm2d(dim));
    }
    blocks = register_module("blocks", nn::Sequential());
    const auto depth = dpr.size();
    for (size_t i = 0; i < depth; ++i) {
      // The last block of each stage attends; the others are conv encoders.
      if (i + 1 == depth) blocks->push_back(Block(dim, dpr[i]));
      else blocks->push_back(ConvEncoder(dim, 4 * dim, dpr[i]));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return blocks->forward(down_proj ? down_norm(down_proj(x)) : x);
  }

 private:
  nn::Conv2d down_proj{nullptr};
  nn::BatchNorm2d down_norm{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(Stage);

struct SwiftFormerConfig {
  std::vector<int64_t> depths, dims;
};

class SwiftFormerImpl : public BackboneImpl {
 public:
  SwiftFormerImpl(const std::string& name, const SwiftFormerConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    stem0 = stem->register_module("0", conv(args.in_chans(), c.dims[0] / 2, 3, 2, 1));
    stem1 = stem->register_module("1", nn::BatchNorm2d(c.dims[0] / 2));
    stem3 = stem->register_module("3", conv(c.dims[0] / 2, c.dims[0], 3, 2, 1));
    stem4 = stem->register_module("4", nn::BatchNorm2d(c.dims[0]));
    for (size_t i = 0; i < 4; ++i) feature_info_.push_back({"stages." + std::to_string(i), c.dims[i], int64_t{4} << i});
    const int64_t last = layers::last_feature_index(args, 4, name);
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i <= last; ++i) {
      const auto s = static_cast<size_t>(i);
      stages_->push_back(Stage(i == 0 ? c.dims[0] : c.dims[s - 1], c.dims[s], i > 0, dpr[s]));
    }
    if (args.features_only()) return;
    norm_ = register_module("norm", nn::BatchNorm2d(c.dims[3]));
    if (args.num_classes() > 0) {
      head_ = register_module("head", nn::Linear(c.dims[3], args.num_classes()));
      head_dist_ = register_module("head_dist", nn::Linear(c.dims[3], args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto pooled = layers::dropout(norm_(stages_->forward(stem(x))).mean({2, 3}), head_drop_rate(), is_training());
    // At inference timm averages the classifier and the distillation head.
    return head_ ? (head_(pooled) + head_dist_(pooled)) / 2 : pooled;
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  torch::Tensor stem(const torch::Tensor& x) { return torch::relu(stem4(stem3(torch::relu(stem1(stem0(x)))))); }

  nn::Conv2d stem0{nullptr}, stem3{nullptr};
  nn::BatchNorm2d stem1{nullptr}, stem4{nullptr}, norm_{nullptr};
  nn::Sequential stages_{nullptr};
  nn::Linear head_{nullptr}, head_dist_{nullptr};
};

}  // namespace

void register_family() {
  register_configs<SwiftFormerImpl>("swiftformer", std::vector<std::pair<std::string, SwiftFormerConfig>>{
                                                       {"swiftformer_xs", {{3, 3, 6, 4}, {48, 56, 112, 220}}},
                                                       {"swiftformer_s", {{3, 3, 9, 6}, {48, 64, 168, 224}}},
                                                       {"swiftformer_l1", {{4, 3, 10, 5}, {48, 96, 192, 384}}},
                                                       {"swiftformer_l3", {{4, 4, 12, 6}, {64, 128, 320, 512}}},
                                                   });
}

}  // namespace swiftformer
}  // namespace smp::timm
