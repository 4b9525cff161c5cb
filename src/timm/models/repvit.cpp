// The models of timm's repvit.py: RepViT, a mobile CNN laid out like a ViT (depthwise token mixer
// with a re-parameterisable identity branch, 1x1 conv MLP channel mixer, SE on every other block).
// reparameterize() folds as timm's fuse(): every conv-BN into one biased conv, each token mixer's
// branches into one conv, and the two classifier heads into one Linear "head".
#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"

namespace smp::timm {

namespace repvit {
namespace {

namespace nn = torch::nn;

struct RepVitConfig {
  std::vector<int64_t> dims, depths;
  bool legacy = false;
};

// Scale and shift of an eval-mode BatchNorm as a per-channel affine map.
std::pair<torch::Tensor, torch::Tensor> bn_affine(const torch::Tensor& weight, const torch::Tensor& bias,
                                                  const torch::Tensor& mean, const torch::Tensor& var, double eps) {
  auto scale = weight / (var + eps).sqrt();
  return {scale, bias - mean * scale};
}

// Replaces `m`'s children by one biased conv whose parameters sit on `m` itself ("weight", "bias"),
// which is where timm's fuse() puts them.
nn::Conv2d adopt_folded(nn::Module& m, const torch::Tensor& w, const torch::Tensor& b, int64_t stride, int64_t groups) {
  for (const auto& name : std::vector<std::string>{"c", "bn", "conv", "conv1"})
    if (m.named_children().contains(name)) m.unregister_module(name);
  auto folded = layers::folded_conv(w, b, stride, groups);
  m.register_parameter("weight", folded->weight);
  m.register_parameter("bias", folded->bias);
  return folded;
}

// Conv without bias ("c") and BatchNorm ("bn").
class ConvNormImpl : public nn::Module, public layers::Reparameterizable {
 public:
  ConvNormImpl(int64_t in, int64_t out, int64_t k = 1, int64_t stride = 1, int64_t groups = 1)
      : stride_(stride), groups_(groups) {
    c_ = register_module(
        "c", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding((k - 1) / 2).groups(groups).bias(false)));
    bn_ = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return folded_ ? folded_(x) : bn_(c_(x)); }
  // The conv-BN pair as one (weight, bias).
  std::pair<torch::Tensor, torch::Tensor> fused() const {
    auto [scale, shift] = bn_affine(bn_->weight, bn_->bias, bn_->running_mean, bn_->running_var, bn_->options.eps());
    return {c_->weight * scale.view({-1, 1, 1, 1}), shift};
  }
  bool reparameterize() override {
    if (folded_) return false;
    torch::NoGradGuard no_grad;
    auto [w, b] = fused();
    folded_ = adopt_folded(*this, w, b, stride_, groups_);
    c_ = nullptr;
    bn_ = nullptr;
    return true;
  }

 private:
  int64_t stride_, groups_;
  nn::Conv2d c_{nullptr}, folded_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvNorm);

// Depthwise kxk conv-BN + depthwise 1x1 (conv-BN when legacy, else a biased conv) + identity; the
// newer models normalise the sum.
class RepVggDwImpl : public nn::Module, public layers::Reparameterizable {
 public:
  RepVggDwImpl(int64_t dim, int64_t k, bool legacy) : dim_(dim), k_(k) {
    conv_ = register_module("conv", ConvNorm(dim, dim, k, 1, dim));
    if (legacy) {
      conv1_norm_ = register_module("conv1", ConvNorm(dim, dim, 1, 1, dim));
    } else {
      conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(dim, dim, 1).groups(dim)));
      bn_ = register_module("bn", nn::BatchNorm2d(dim));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (folded_) return folded_(x);
    auto y = conv_(x) + (conv1_norm_ ? conv1_norm_(x) : conv1_(x)) + x;
    return bn_ ? bn_(y) : y;
  }
  bool reparameterize() override {
    if (folded_) return false;
    torch::NoGradGuard no_grad;
    auto [w, b] = conv_->fused();
    auto [w1, b1] = conv1_norm_ ? conv1_norm_->fused() : std::make_pair(conv1_->weight, conv1_->bias);
    const int64_t p = (k_ - 1) / 2;
    w = w + torch::constant_pad_nd(w1, {p, p, p, p}) + layers::identity_kernel(dim_, dim_, k_, k_, w.options());
    b = b + b1;
    if (bn_) {
      auto [scale, shift] = bn_affine(bn_->weight, bn_->bias, bn_->running_mean, bn_->running_var, bn_->options.eps());
      w = w * scale.view({-1, 1, 1, 1});
      b = b * scale + shift;
      unregister_module("bn");
      bn_ = nullptr;
    }
    folded_ = adopt_folded(*this, w, b, 1, dim_);
    conv_ = nullptr;
    conv1_norm_ = nullptr;
    conv1_ = nullptr;
    return true;
  }

 private:
  int64_t dim_, k_;
  ConvNorm conv_{nullptr}, conv1_norm_{nullptr};
  nn::Conv2d conv1_{nullptr}, folded_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(RepVggDw);

class MlpImpl : public nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden) {
    conv1_ = register_module("conv1", ConvNorm(dim, hidden));
    conv2_ = register_module("conv2", ConvNorm(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv2_(torch::gelu(conv1_(x))); }

 private:
  ConvNorm conv1_{nullptr}, conv2_{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t mlp_ratio, int64_t k, bool se, bool legacy) {
    token_mixer_ = register_module("token_mixer", RepVggDw(dim, k, legacy));
    if (se) se_ = register_module("se", layers::SEModule(dim, 0.25));
    channel_mixer_ = register_module("channel_mixer", Mlp(dim, dim * mlp_ratio));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = token_mixer_(x);
    if (se_) y = se_(y);
    return y + channel_mixer_(y);
  }

 private:
  RepVggDw token_mixer_{nullptr};
  layers::SEModule se_{nullptr};
  Mlp channel_mixer_{nullptr};
};
TORCH_MODULE(Block);

class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t mlp_ratio, int64_t out, int64_t k, bool legacy) {
    pre_block_ = register_module("pre_block", Block(in, mlp_ratio, k, false, legacy));
    spatial_downsample_ = register_module("spatial_downsample", ConvNorm(in, in, k, 2, in));
    channel_downsample_ = register_module("channel_downsample", ConvNorm(in, out, 1));
    ffn_ = register_module("ffn", Mlp(out, out * mlp_ratio));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = channel_downsample_(spatial_downsample_(pre_block_(x)));
    return y + ffn_(y);
  }

 private:
  Block pre_block_{nullptr};
  ConvNorm spatial_downsample_{nullptr}, channel_downsample_{nullptr};
  Mlp ffn_{nullptr};
};
TORCH_MODULE(Downsample);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, int64_t depth, bool downsample, bool legacy) {
    constexpr int64_t kMlp = 2, kKernel = 3;
    if (downsample) downsample_ = register_module("downsample", Downsample(in, kMlp, out, kKernel, legacy));
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks_->push_back(Block(out, kMlp, kKernel, i % 2 == 0, legacy));
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks_->forward(downsample_ ? downsample_(x) : x); }

 private:
  Downsample downsample_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Stage);

// BatchNorm1d ("bn") then Linear ("l").
class NormLinearImpl : public nn::Module {
 public:
  NormLinearImpl(int64_t in, int64_t out) {
    bn_ = register_module("bn", nn::BatchNorm1d(in));
    l_ = register_module("l", nn::Linear(in, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return l_(bn_(x)); }
  // BatchNorm and Linear as one (weight, bias).
  std::pair<torch::Tensor, torch::Tensor> fused() const {
    auto [scale, shift] = bn_affine(bn_->weight, bn_->bias, bn_->running_mean, bn_->running_var, bn_->options.eps());
    return {l_->weight * scale.unsqueeze(0), torch::mv(l_->weight, shift) + l_->bias};
  }

 private:
  nn::BatchNorm1d bn_{nullptr};
  nn::Linear l_{nullptr};
};
TORCH_MODULE(NormLinear);

class RepVitImpl : public BackboneImpl, public layers::Reparameterizable {
 public:
  RepVitImpl(const std::string& name, const RepVitConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    stem_conv1_ = stem->register_module("conv1", ConvNorm(args.in_chans(), c.dims[0] / 2, 3, 2));
    stem_conv2_ = stem->register_module("conv2", ConvNorm(c.dims[0] / 2, c.dims[0], 3, 2));
    const auto n = static_cast<int64_t>(c.dims.size());
    for (int64_t i = 0; i < n; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[static_cast<size_t>(i)], int64_t{4} << i});
    const int64_t last = layers::last_feature_index(args, n, name);
    stages_ = register_module("stages", nn::Sequential());
    int64_t prev = c.dims[0];
    for (int64_t i = 0; i <= last; ++i) {
      const auto s = static_cast<size_t>(i);
      stages_->push_back(Stage(prev, c.dims[s], c.depths[s], i > 0, c.legacy));
      prev = c.dims[s];
    }
    if (args.features_only() || args.num_classes() <= 0) return;
    // The distilled classifier: the mean of two heads in inference.
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_ = head->register_module("head", NormLinear(prev, args.num_classes()));
    head_dist_ = head->register_module("head_dist", NormLinear(prev, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_conv2_(torch::gelu(stem_conv1_(x)));
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<StageImpl>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(stem_conv2_(torch::gelu(stem_conv1_(x)))).mean({2, 3});
    y = layers::dropout(y, head_drop_rate(), is_training());
    if (fc_) return fc_(y);
    if (!head_) return y;
    return (head_(y) + head_dist_(y)) / 2;
  }

  // The two heads become their mean, one Linear "head" (timm's fuse of the distilled classifier).
  bool reparameterize() override {
    if (!head_) return false;
    torch::NoGradGuard no_grad;
    auto [w, b] = head_->fused();
    auto [wd, bd] = head_dist_->fused();
    unregister_module("head");
    fc_ = register_module("head", nn::Linear(w.size(1), w.size(0)));
    fc_->to(w.device(), w.scalar_type());
    fc_->weight.copy_((w + wd) / 2);
    fc_->bias.copy_((b + bd) / 2);
    head_ = nullptr;
    head_dist_ = nullptr;
    return true;
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv1.c"; }

 private:
  ConvNorm stem_conv1_{nullptr}, stem_conv2_{nullptr};
  nn::Sequential stages_{nullptr};
  NormLinear head_{nullptr}, head_dist_{nullptr};
  nn::Linear fc_{nullptr};  // the folded classifier
};

}  // namespace

void register_family() {
  const std::vector<int64_t> d48 = {48, 96, 192, 384}, d64 = {64, 128, 256, 512};
  const std::vector<std::pair<std::string, RepVitConfig>> models = {
      {"repvit_m1", {d48, {2, 2, 14, 2}, true}},
      {"repvit_m2", {d64, {2, 2, 12, 2}, true}},
      {"repvit_m3", {d64, {4, 4, 18, 2}, true}},
      {"repvit_m0_9", {d48, {2, 2, 14, 2}, false}},
      {"repvit_m1_0", {{56, 112, 224, 448}, {2, 2, 14, 2}, false}},
      {"repvit_m1_1", {d64, {2, 2, 12, 2}, false}},
      {"repvit_m1_5", {d64, {4, 4, 24, 4}, false}},
      {"repvit_m2_3", {{80, 160, 320, 640}, {6, 6, 34, 2}, false}},
  };
  register_configs<RepVitImpl>("repvit", models);
}

}  // namespace repvit
}  // namespace smp::timm
