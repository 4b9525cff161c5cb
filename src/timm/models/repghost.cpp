// The models of timm's repghost.py: RepGhostNet, GhostNet's layout with re-parameterisable ghost
// modules (a BatchNorm shortcut added to the cheap depthwise conv instead of concatenation).
#include "timm/families.h"
#include "timm/layers/effnet_blocks.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"
#include "timm/layers/norm_act.h"

namespace smp::timm {

namespace repghost {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1, bool bias = false) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(bias));
}

// Primary conv-BN(-ReLU), then a cheap depthwise conv-BN plus a BatchNorm of its input
// ("fusion_bn.0"), the sum activated; the BatchNorm folds into the depthwise conv for inference.
class RepGhostModuleImpl : public nn::Module, public layers::Reparameterizable {
 public:
  RepGhostModuleImpl(int64_t in, int64_t out, bool relu) : relu_(relu), channels_(out) {
    primary_conv_ = register_module("primary_conv",
                                    nn::Sequential(conv(in, out, 1), layers::BatchNormAct2d(out, relu ? "relu" : "")));
    fusion_bn_ = register_module("fusion_bn", nn::Sequential(layers::BatchNormAct2d(out, "")));
    cheap_operation_ =
        register_module("cheap_operation", nn::Sequential(conv(out, out, 3, 1, out), layers::BatchNormAct2d(out, "")));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto x1 = primary_conv_->forward(x);
    auto x2 = folded_ ? folded_(x1) : cheap_operation_->forward(x1) + fusion_bn_->forward(x1);
    return relu_ ? torch::relu(x2) : x2;
  }
  bool reparameterize() override {
    if (folded_) return false;
    auto [w, b] = layers::fuse_bn(cheap_operation_[0]->as<nn::Conv2d>()->weight,
                                  *cheap_operation_[1]->as<layers::BatchNormAct2dImpl>());
    auto [iw, ib] = layers::fuse_bn(layers::identity_kernel(channels_, channels_, 3, 3, w.options()),
                                    *fusion_bn_[0]->as<layers::BatchNormAct2dImpl>());
    unregister_module("cheap_operation");
    unregister_module("fusion_bn");
    cheap_operation_ = nullptr;
    fusion_bn_ = nullptr;
    folded_ = register_module("cheap_operation", layers::folded_conv(w + iw, b + ib, 1, channels_));
    return true;
  }

 private:
  bool relu_;
  int64_t channels_;
  nn::Sequential primary_conv_{nullptr}, fusion_bn_{nullptr}, cheap_operation_{nullptr};
  nn::Conv2d folded_{nullptr};
};
TORCH_MODULE(RepGhostModule);

struct BlockCfg {
  int64_t k, exp, c;
  double se;
  int64_t s;
};

class RepGhostBottleneckImpl : public nn::Module {
 public:
  RepGhostBottleneckImpl(int64_t in, int64_t mid, int64_t out, int64_t k, int64_t stride, double se) {
    ghost1_ = register_module("ghost1", RepGhostModule(in, mid, true));
    if (stride > 1) {
      conv_dw_ = register_module("conv_dw", conv(mid, mid, k, stride, mid));
      bn_dw_ = register_module("bn_dw", layers::BatchNormAct2d(mid, ""));
    }
    if (se > 0)
      se_ = register_module("se", layers::EffSqueezeExcite(
                                      mid, layers::make_divisible(static_cast<double>(mid) * se, 4), "relu", "hard_sigmoid"));
    ghost2_ = register_module("ghost2", RepGhostModule(mid, out, false));
    if (in != out || stride != 1) {
      shortcut_ = register_module(
          "shortcut", nn::Sequential(conv(in, in, k, stride, in), layers::BatchNormAct2d(in, ""), conv(in, out, 1),
                                     layers::BatchNormAct2d(out, "")));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = ghost1_(x);
    if (conv_dw_) y = bn_dw_(conv_dw_(y));
    if (se_) y = se_(y);
    y = ghost2_(y);
    return y + (shortcut_ ? shortcut_->forward(x) : x);
  }

 private:
  RepGhostModule ghost1_{nullptr}, ghost2_{nullptr};
  nn::Conv2d conv_dw_{nullptr};
  layers::BatchNormAct2d bn_dw_{nullptr};
  layers::EffSqueezeExcite se_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(RepGhostBottleneck);

const std::vector<std::vector<BlockCfg>>& stage_cfgs() {
  static const std::vector<std::vector<BlockCfg>> cfgs = {
      {{3, 8, 16, 0, 1}},
      {{3, 24, 24, 0, 2}},
      {{3, 36, 24, 0, 1}},
      {{5, 36, 40, 0.25, 2}},
      {{5, 60, 40, 0.25, 1}},
      {{3, 120, 80, 0, 2}},
      {{3, 100, 80, 0, 1}, {3, 120, 80, 0, 1}, {3, 120, 80, 0, 1}, {3, 240, 112, 0.25, 1}, {3, 336, 112, 0.25, 1}},
      {{5, 336, 160, 0.25, 2}},
      {{5, 480, 160, 0, 1}, {5, 480, 160, 0.25, 1}, {5, 480, 160, 0, 1}, {5, 480, 160, 0.25, 1}},
  };
  return cfgs;
}

class RepGhostNetImpl : public BackboneImpl {
 public:
  RepGhostNetImpl(const std::string& name, double width, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    auto div4 = [&](double v) { return layers::make_divisible(v * width, 4); };
    const int64_t stem = div4(16);
    conv_stem_ = register_module("conv_stem", conv(args.in_chans(), stem, 3, 2));
    bn1_ = register_module("bn1", layers::BatchNormAct2d(stem, "relu"));
    feature_info_.push_back({"conv_stem", stem, 2});

    // Feature points: the stem conv, then every stage whose last block is strided.
    const auto& cfgs = stage_cfgs();
    std::vector<int64_t> feature_stage = {-1};
    int64_t reduction = 2;
    for (size_t i = 0; i < cfgs.size(); ++i) {
      if (cfgs[i].back().s > 1) {
        reduction *= 2;
        feature_info_.push_back({"blocks." + std::to_string(i), div4(static_cast<double>(cfgs[i].back().c)), reduction});
        feature_stage.push_back(static_cast<int64_t>(i));
      }
    }
    const int64_t last_feature = layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name);
    const int64_t last_stage = args.features_only() ? feature_stage[static_cast<size_t>(last_feature)]
                                                    : static_cast<int64_t>(cfgs.size());
    blocks_ = register_module("blocks", nn::ModuleList());
    int64_t prev = stem;
    for (int64_t i = 0; i < static_cast<int64_t>(cfgs.size()) && i <= last_stage; ++i) {
      nn::Sequential stage;
      for (const auto& b : cfgs[static_cast<size_t>(i)]) {
        const int64_t out = div4(static_cast<double>(b.c)), mid = div4(static_cast<double>(b.exp));
        stage->push_back(RepGhostBottleneck(prev, mid, out, b.k, b.s, b.se));
        prev = out;
      }
      blocks_->push_back(stage);
    }
    if (args.features_only()) return;
    const int64_t out = div4(960);
    blocks_->push_back(nn::Sequential(layers::EffConvBnAct(prev, out, 1, 1, 1, "relu")));
    conv_head_ = register_module("conv_head", conv(out, 1280, 1, 1, 1, true));
    if (args.num_classes() > 0) classifier_ = register_module("classifier", nn::Linear(1280, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = conv_stem_(x);
    size_t next = 0;
    if (indices[0] == 0) {
      out.push_back(y);
      ++next;
    }
    if (next == indices.size()) return out;
    y = bn1_(y);
    for (size_t i = 0; next < indices.size() && i < blocks_->size(); ++i) {
      y = blocks_[i]->as<nn::Sequential>()->forward(y);
      const auto& m = feature_info_[static_cast<size_t>(indices[next])].module;
      if (m == "blocks." + std::to_string(i)) {
        out.push_back(y);
        ++next;
      }
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = bn1_(conv_stem_(x));
    for (const auto& stage : *blocks_) y = stage->as<nn::Sequential>()->forward(y);
    y = torch::relu(conv_head_(y.mean({2, 3}, /*keepdim=*/true))).flatten(1);
    return classify(y, classifier_);
  }

  std::vector<std::string> flattened_children() const override { return {"blocks"}; }
  std::string first_conv() const override { return "conv_stem"; }

 private:
  nn::Conv2d conv_stem_{nullptr}, conv_head_{nullptr};
  layers::BatchNormAct2d bn1_{nullptr};
  nn::ModuleList blocks_{nullptr};
  nn::Linear classifier_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, double>> models = {
      {"repghostnet_050", 0.5}, {"repghostnet_058", 0.58}, {"repghostnet_080", 0.8}, {"repghostnet_100", 1.0},
      {"repghostnet_111", 1.11}, {"repghostnet_130", 1.3}, {"repghostnet_150", 1.5}, {"repghostnet_200", 2.0},
  };
  register_configs<RepGhostNetImpl>("repghost", models);
}

}  // namespace repghost
}  // namespace smp::timm
