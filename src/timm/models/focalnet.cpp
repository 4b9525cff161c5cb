// timm's FocalNet (focalnet.py): focal modulation (a stack of growing depthwise convolutions whose
// outputs are gated and summed, plus a global context level) in place of attention. Fully
// convolutional and NCHW throughout, so any input size works.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace focalnet {
namespace {

struct FocalNetConfig {
  int64_t embed_dim;
  std::vector<int64_t> depths;
  int64_t focal_level = 2;
  int64_t focal_window = 3;
  bool post_norm = false;             // norms after modulation and MLP instead of before
  bool post_norm_in_modulation = false;
  bool overlap_down = false;          // overlapping (padded) stem and downsampling convolutions
  bool layer_scale = false;           // LayerScale2d at 1e-4 on both branches
  int64_t num_classes = 1000;
};
constexpr double kNormEps = 1e-5;

layers::LayerNorm2d norm2d(int64_t dim) { return layers::LayerNorm2d(dim, kNormEps); }

nn::Conv2d conv1x1(int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 1)); }

class FocalModulationImpl : public nn::Module {
 public:
  FocalModulationImpl(int64_t dim, int64_t level, int64_t window, bool post_norm) : dim_(dim), level_(level) {
    f = register_module("f", conv1x1(dim, 2 * dim + level + 1));
    h = register_module("h", conv1x1(dim, dim));
    proj = register_module("proj", conv1x1(dim, dim));
    focal_layers = register_module("focal_layers", nn::ModuleList());
    for (int64_t k = 0; k < level; ++k) {
      const auto ks = 2 * k + window;
      focal_layers->push_back(nn::Sequential(
          nn::Conv2d(nn::Conv2dOptions(dim, dim, ks).groups(dim).padding(ks / 2).bias(false)), nn::GELU()));
    }
    if (post_norm) norm = register_module("norm", norm2d(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto parts = f(x).split_with_sizes({dim_, dim_, level_ + 1}, 1);
    auto ctx = parts[1];
    const auto& gates = parts[2];
    torch::Tensor ctx_all;
    for (int64_t l = 0; l < level_; ++l) {
      ctx = focal_layers[static_cast<size_t>(l)]->as<nn::Sequential>()->forward(ctx);
      auto gated = ctx * gates.narrow(1, l, 1);
      ctx_all = ctx_all.defined() ? ctx_all + gated : gated;
    }
    auto global = torch::gelu(ctx.mean({2, 3}, true));
    ctx_all = ctx_all + global * gates.narrow(1, level_, 1);
    auto out = parts[0] * h(ctx_all);
    if (norm) out = norm(out);
    return proj(out);
  }

 private:
  int64_t dim_, level_;
  nn::Conv2d f{nullptr}, h{nullptr}, proj{nullptr};
  nn::ModuleList focal_layers{nullptr};
  layers::LayerNorm2d norm{nullptr};
};
TORCH_MODULE(FocalModulation);

class FocalNetBlockImpl : public nn::Module {
 public:
  FocalNetBlockImpl(int64_t dim, const FocalNetConfig& c, double drop_path_rate) : drop_path_rate_(drop_path_rate) {
    if (!c.post_norm) norm1 = register_module("norm1", norm2d(dim));
    modulation = register_module("modulation", FocalModulation(dim, c.focal_level, c.focal_window,
                                                               c.post_norm_in_modulation));
    if (c.post_norm) norm1_post = register_module("norm1_post", norm2d(dim));
    if (c.layer_scale) ls1 = register_module("ls1", layers::LayerScale2d(dim, 1e-4));
    if (!c.post_norm) norm2 = register_module("norm2", norm2d(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim).use_conv(true)));
    if (c.post_norm) norm2_post = register_module("norm2_post", norm2d(dim));
    if (c.layer_scale) ls2 = register_module("ls2", layers::LayerScale2d(dim, 1e-4));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = modulation(norm1 ? norm1(x) : x);
    if (norm1_post) y = norm1_post(y);
    if (ls1) y = ls1(y);
    auto out = x + layers::drop_path(y, drop_path_rate_, is_training());
    y = mlp(norm2 ? norm2(out) : out);
    if (norm2_post) y = norm2_post(y);
    if (ls2) y = ls2(y);
    return out + layers::drop_path(y, drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  layers::LayerNorm2d norm1{nullptr}, norm1_post{nullptr}, norm2{nullptr}, norm2_post{nullptr};
  FocalModulation modulation{nullptr};
  layers::LayerScale2d ls1{nullptr}, ls2{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(FocalNetBlock);

// Strided conv (overlapping and padded in the large models) + LayerNorm2d: the stem and each
// stage's downsampling.
class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out, int64_t stride, bool overlap) {
    int64_t kernel = stride, padding = 0;
    if (overlap) {
      kernel = stride == 4 ? 7 : 3;
      padding = stride == 4 ? 2 : 1;
    }
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding)));
    norm = register_module("norm", norm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm(proj(x)); }

 private:
  nn::Conv2d proj{nullptr};
  layers::LayerNorm2d norm{nullptr};
};
TORCH_MODULE(Downsample);

class FocalNetStageImpl : public nn::Module {
 public:
  FocalNetStageImpl(int64_t in, int64_t out, bool downsample_first, const std::vector<double>& drop_path_rates,
                    const FocalNetConfig& c) {
    if (downsample_first) downsample = register_module("downsample", Downsample(in, out, 2, c.overlap_down));
    blocks = register_module("blocks", nn::Sequential());
    for (double rate : drop_path_rates) blocks->push_back(FocalNetBlock(out, c, rate));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  Downsample downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(FocalNetStage);

class FocalNetImpl : public BackboneImpl {
 public:
  FocalNetImpl(const std::string& name, const FocalNetConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    stem_ = register_module("stem", Downsample(args.in_chans(), c.embed_dim, 4, c.overlap_down));
    // timm's default drop_path_rate here is 0.1; as for every family, the default is 0.
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    layers_ = register_module("layers", nn::Sequential());
    int64_t dim = c.embed_dim;
    for (int64_t i = 0; i < n; ++i) {
      const auto out = c.embed_dim << i;
      feature_info_.push_back({"layers." + std::to_string(i), out, 4 << i});
      if (i <= last) layers_->push_back(FocalNetStage(dim, out, i > 0, drop_path_rates[static_cast<size_t>(i)], c));
      dim = out;
    }
    if (args.features_only()) return;
    norm_ = register_module("norm", norm2d(dim));
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(dim, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(layers_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = layers_[static_cast<size_t>(i)]->as<FocalNetStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(norm_(layers_->forward(stem_(x))), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"layers"}; }
  std::string first_conv() const override { return "stem.proj"; }

 private:
  Downsample stem_{nullptr};
  nn::Sequential layers_{nullptr};
  layers::LayerNorm2d norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> tiny{2, 2, 6, 2}, deep{2, 2, 18, 2};
  // The large models: post-norm, overlapping downsampling, layer scale.
  auto big = [&](int64_t dim, int64_t level, int64_t window, bool norm_in_modulation, int64_t classes) {
    return FocalNetConfig{dim, deep, level, window, true, norm_in_modulation, true, true, classes};
  };
  const std::vector<std::pair<std::string, FocalNetConfig>> models = {
      {"focalnet_tiny_srf", {96, tiny}},
      {"focalnet_small_srf", {96, deep}},
      {"focalnet_base_srf", {128, deep}},
      {"focalnet_tiny_lrf", {96, tiny, 3}},
      {"focalnet_small_lrf", {96, deep, 3}},
      {"focalnet_base_lrf", {128, deep, 3}},
      {"focalnet_large_fl3", big(192, 3, 5, false, 21842)},
      {"focalnet_large_fl4", big(192, 4, 3, false, 21842)},
      {"focalnet_xlarge_fl3", big(256, 3, 5, false, 21842)},
      {"focalnet_xlarge_fl4", big(256, 4, 3, false, 21842)},
      {"focalnet_huge_fl3", big(352, 3, 3, true, 21842)},
      {"focalnet_huge_fl4", big(352, 4, 3, true, 0)},
  };
  register_configs<FocalNetImpl>("focalnet", models,
                                 [](ModelEntry& entry, const FocalNetConfig& c) { entry.num_classes = c.num_classes; });
}

}  // namespace focalnet
}  // namespace smp::timm
