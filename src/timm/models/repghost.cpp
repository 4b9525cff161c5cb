// The models of timm's repghost.py: RepGhostNet, GhostNet's layout with re-parameterisable ghost
// modules (a BatchNorm shortcut added to the cheap depthwise conv instead of concatenation).
#include "timm/families.h"
#include "timm/layers/effnet_blocks.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"
#include "timm/layers/norm_act.h"
#include "timm/models/ghost_frame.h"

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

using ghost_frame::BlockCfg;

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

const ghost_frame::StageCfgs& stage_cfgs() {
  static const ghost_frame::StageCfgs cfgs = {
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

class RepGhostNetImpl : public ghost_frame::GhostFrameImpl {
 public:
  RepGhostNetImpl(const std::string& name, double width, const ModelArgs& args)
      : GhostFrameImpl(name, args, width, stage_cfgs(), [](const ghost_frame::BlockArgs& b) {
          return nn::AnyModule(RepGhostBottleneck(b.in, b.mid, b.out, b.cfg.k, b.cfg.s, b.cfg.se));
        }) {}
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
