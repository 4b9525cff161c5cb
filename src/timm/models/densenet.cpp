// timm's DenseNet (densenet121/161/169/201, densenet264d, densenetblur121d).
#include <smp/modules.h>
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/blur_pool.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"

namespace smp::timm {

namespace nn = torch::nn;
using layers::BatchNormAct2d;

namespace densenet {
namespace {

struct DenseNetConfig {
  int64_t growth_rate = 32;
  std::vector<int64_t> block_config;
  bool deep_stem = false;
  bool blur_stem = false;  // stem pool = stride-1 max pool + BlurPool2d
};

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int64_t in, int64_t growth, int64_t bn_size) {
    norm1 = register_module("norm1", BatchNormAct2d(in, "relu"));
    conv1 = register_module("conv1", conv(in, bn_size * growth, 1));
    norm2 = register_module("norm2", BatchNormAct2d(bn_size * growth, "relu"));
    conv2 = register_module("conv2", conv(bn_size * growth, growth, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv2(norm2(conv1(norm1(x)))); }

 private:
  BatchNormAct2d norm1{nullptr}, norm2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(DenseLayer);

// Each layer sees the concatenation of the block input and every earlier layer's output.
class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int64_t layers, int64_t in, int64_t growth, int64_t bn_size) {
    for (int64_t i = 0; i < layers; ++i)
      layers_.push_back(register_module("denselayer" + std::to_string(i + 1), DenseLayer(in + i * growth, growth, bn_size)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> features{x};
    for (auto& layer : layers_) features.push_back(layer(torch::cat(features, 1)));
    return torch::cat(features, 1);
  }

 private:
  std::vector<DenseLayer> layers_;
};
TORCH_MODULE(DenseBlock);

constexpr int64_t kBnSize = 4;

class DenseNetImpl : public BackboneImpl {
 public:
  DenseNetImpl(const std::string& name, const DenseNetConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const int64_t g = cfg.growth_rate, init = 2 * g;
    const auto n_blocks = static_cast<int64_t>(cfg.block_config.size());
    // Feature modules: the stem norm, each block but the last, and the final norm.
    feature_info_.push_back({std::string("features.norm") + (cfg.deep_stem ? "2" : "0"), init, 2});
    int64_t chs = init, reduction = 4;
    for (int64_t i = 0; i + 1 < n_blocks; ++i) {
      chs += cfg.block_config[static_cast<size_t>(i)] * g;
      feature_info_.push_back({"features.denseblock" + std::to_string(i + 1), chs, reduction});
      chs /= 2;
      reduction *= 2;
    }
    chs += cfg.block_config.back() * g;
    feature_info_.push_back({"features.norm5", chs, reduction});

    const auto n_features = static_cast<int64_t>(feature_info_.size());
    const std::string last_module =
        feature_info_[static_cast<size_t>(layers::last_feature_index(args, n_features, name))].module;

    features_ = register_module("features", nn::Sequential());
    auto add = [&](const std::string& child, nn::AnyModule module) {
      features_->push_back(child, module);
      children_.push_back(std::move(module));
      child_names_.push_back("features." + child);
      return child_names_.back() == last_module;  // true: nothing after this is needed
    };
    const auto build = [&] {
      if (cfg.deep_stem) {
        const int64_t c1 = g, c2 = g;
        if (add("conv0", nn::AnyModule(conv(args.in_chans(), c1, 3, 2)))) return;
        if (add("norm0", nn::AnyModule(BatchNormAct2d(c1, "relu")))) return;
        if (add("conv1", nn::AnyModule(conv(c1, c2, 3)))) return;
        if (add("norm1", nn::AnyModule(BatchNormAct2d(c2, "relu")))) return;
        if (add("conv2", nn::AnyModule(conv(c2, init, 3)))) return;
        if (add("norm2", nn::AnyModule(BatchNormAct2d(init, "relu")))) return;
      } else {
        if (add("conv0", nn::AnyModule(conv(args.in_chans(), init, 7, 2)))) return;
        if (add("norm0", nn::AnyModule(BatchNormAct2d(init, "relu")))) return;
      }
      if (cfg.blur_stem) {
        Block pool(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(1).padding(1)), layers::BlurPool2d(init, 3, 2));
        if (add("pool0", nn::AnyModule(pool))) return;
      } else if (add("pool0", nn::AnyModule(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1))))) {
        return;
      }
      int64_t c = init;
      for (int64_t i = 0; i < n_blocks; ++i) {
        const auto layers = cfg.block_config[static_cast<size_t>(i)];
        if (add("denseblock" + std::to_string(i + 1), nn::AnyModule(DenseBlock(layers, c, g, kBnSize)))) return;
        c += layers * g;
        if (i + 1 == n_blocks) break;
        Block transition;
        transition->push_back("norm", BatchNormAct2d(c, "relu"));
        transition->push_back("conv", conv(c, c / 2, 1));
        transition->push_back("pool", nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(2)));
        if (add("transition" + std::to_string(i + 1), nn::AnyModule(transition))) return;
        c /= 2;
      }
      add("norm5", nn::AnyModule(BatchNormAct2d(c, "relu")));
    };
    build();

    if (!args.features_only() && args.num_classes() > 0)
      classifier_ = register_module("classifier", nn::Linear(chs, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    int64_t available = 0;
    for (const auto& f : feature_info_)
      available += std::count(child_names_.begin(), child_names_.end(), f.module) > 0 ? 1 : 0;
    layers::check_feature_indices(indices, available, model_name());
    std::vector<torch::Tensor> out;
    auto y = x;
    for (size_t c = 0; out.size() < indices.size(); ++c) {
      y = children_[c].forward(y);
      if (child_names_[c] == feature_info_[static_cast<size_t>(indices[out.size()])].module) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(features_->forward(x), classifier_);
  }

  std::vector<std::string> flattened_children() const override { return {"features"}; }
  std::string first_conv() const override { return "features.conv0"; }

 private:
  nn::Sequential features_{nullptr};
  std::vector<nn::AnyModule> children_;   // the children of `features`, in order
  std::vector<std::string> child_names_;  // dotted names of the children of `features`, in order
  nn::Linear classifier_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, DenseNetConfig>> models = {
      {"densenet121", {32, {6, 12, 24, 16}}},
      {"densenetblur121d", {32, {6, 12, 24, 16}, true, true}},
      {"densenet169", {32, {6, 12, 32, 32}}},
      {"densenet201", {32, {6, 12, 48, 32}}},
      {"densenet161", {48, {6, 12, 36, 24}}},
      {"densenet264d", {48, {6, 12, 64, 48}, true}},
  };
  register_configs<DenseNetImpl>("densenet", models);
}

}  // namespace densenet
}  // namespace smp::timm
