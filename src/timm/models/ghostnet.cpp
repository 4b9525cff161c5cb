// The models of timm's ghostnet.py: GhostNet V1, V2 (decoupled fully-connected attention on the
// expansion) and V3 (re-parameterisable multi-branch ghost modules), sharing one network layout.
#include <cmath>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/effnet_blocks.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"
#include "timm/layers/norm_act.h"
#include "timm/models/ghost_frame.h"

namespace smp::timm {

namespace ghostnet {
namespace {

namespace nn = torch::nn;

enum class Version { kV1, kV2, kV3 };

struct GhostConfig {
  double width = 1.0;
  Version version = Version::kV1;
};

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1, bool bias = false) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(bias));
}

nn::Conv2d conv_hw(int64_t ch, int64_t kh, int64_t kw) {
  return nn::Conv2d(nn::Conv2dOptions(ch, ch, {kh, kw}).padding({kh / 2, kw / 2}).groups(ch).bias(false));
}

using SqueezeExcite = layers::EffSqueezeExcite;
using ConvBnAct = layers::EffConvBnAct;
using ConvBnActImpl = layers::EffConvBnActImpl;

// Squeeze-excite with a reduced width rounded to a multiple of 4 and a hard-sigmoid gate.
SqueezeExcite squeeze_excite(int64_t channels, double ratio) {
  return SqueezeExcite(channels, layers::make_divisible(static_cast<double>(channels) * ratio, 4), "relu",
                       "hard_sigmoid");
}

// The attention branch of GhostNet V2/V3 ("short_conv"): pooled 2x, conv-BN, then 1x5 and 5x1
// depthwise conv-BN; its sigmoid, upsampled, gates the ghost module's output.
nn::Sequential short_conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return nn::Sequential(conv(in, out, k, stride), layers::BatchNormAct2d(out, ""), conv_hw(out, 1, 5),
                        layers::BatchNormAct2d(out, ""), conv_hw(out, 5, 1), layers::BatchNormAct2d(out, ""));
}

torch::Tensor attn_gate(nn::Sequential& short_conv, const torch::Tensor& x, const torch::Tensor& out) {
  auto res = short_conv->forward(torch::avg_pool2d(x, 2, 2));
  return out * torch::upsample_nearest2d(torch::sigmoid(res), {out.size(2), out.size(3)});
}

// V1 ("original") and V2 ("attn") ghost module: a primary conv makes half the channels, a cheap
// depthwise conv makes the rest from them.
class GhostModuleImpl : public nn::Module {
 public:
  GhostModuleImpl(int64_t in, int64_t out, bool relu, bool attn) : out_(out) {
    const int64_t init = (out + 1) / 2;
    const std::string act = relu ? "relu" : "";
    primary_conv_ = register_module("primary_conv", nn::Sequential(conv(in, init, 1), layers::BatchNormAct2d(init, act)));
    cheap_operation_ =
        register_module("cheap_operation", nn::Sequential(conv(init, init, 3, 1, init), layers::BatchNormAct2d(init, act)));
    if (attn) short_conv_ = register_module("short_conv", short_conv(in, out, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto x1 = primary_conv_->forward(x);
    auto x2 = cheap_operation_->forward(x1);
    auto out = torch::cat({x1, x2}, 1);
    if (out.size(1) != out_) out = out.narrow(1, 0, out_);
    return short_conv_ ? attn_gate(short_conv_, x, out) : out;
  }

 private:
  int64_t out_;
  nn::Sequential primary_conv_{nullptr}, cheap_operation_{nullptr}, short_conv_{nullptr};
};
TORCH_MODULE(GhostModule);

// The sum of conv-BN branches (kernel k, stride, groups), an optional 1x1 conv-BN scale branch and an
// optional BatchNorm identity, which folds into one biased convolution.
std::pair<torch::Tensor, torch::Tensor> fold(nn::ModuleList& convs, ConvBnAct scale, layers::BatchNormAct2d skip,
                                             int64_t k, int64_t channels, int64_t groups) {
  torch::Tensor w, b;
  auto add = [&](std::pair<torch::Tensor, torch::Tensor> wb) {
    w = w.defined() ? w + wb.first : wb.first;
    b = b.defined() ? b + wb.second : wb.second;
  };
  for (const auto& m : *convs) {
    auto* c = m->as<ConvBnActImpl>();
    add(layers::fuse_bn(c->conv->weight, *c->bn1));
  }
  if (scale) {
    auto [sw, sb] = layers::fuse_bn(scale->conv->weight, *scale->bn1);
    const int64_t p = k / 2;
    add({torch::constant_pad_nd(sw, {p, p, p, p}), sb});
  }
  if (skip) add(layers::fuse_bn(layers::identity_kernel(channels, groups, k, k, skip->weight.options()), *skip));
  return {w, b};
}

// V3 ghost module: three parallel primary conv-BN branches, and three cheap depthwise branches plus a
// 1x1 scale branch and a BatchNorm identity; "shortcut" mode adds V2's attention gate.
class GhostModuleV3Impl : public nn::Module, public layers::Reparameterizable {
 public:
  GhostModuleV3Impl(int64_t in, int64_t out, bool relu, bool shortcut) : out_(out), init_((out + 1) / 2) {
    act_ = relu ? "relu" : "";
    primary_rpr_conv_ = register_module("primary_rpr_conv", nn::ModuleList());
    for (int i = 0; i < 3; ++i) primary_rpr_conv_->push_back(ConvBnAct(in, init_, 1, 1, 1, ""));
    cheap_rpr_skip_ = register_module("cheap_rpr_skip", layers::BatchNormAct2d(init_, ""));
    cheap_rpr_conv_ = register_module("cheap_rpr_conv", nn::ModuleList());
    for (int i = 0; i < 3; ++i) cheap_rpr_conv_->push_back(ConvBnAct(init_, init_, 3, 1, init_, ""));
    cheap_rpr_scale_ = register_module("cheap_rpr_scale", ConvBnAct(init_, init_, 1, 1, init_, ""));
    if (shortcut) short_conv_ = register_module("short_conv", short_conv(in, out, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto act = layers::get_act(act_);
    torch::Tensor x1, x2;
    if (primary_conv_) {
      x1 = act(primary_conv_->forward(x));
      x2 = act(cheap_operation_->forward(x1));
    } else {
      for (const auto& m : *primary_rpr_conv_) {
        auto y = m->as<ConvBnActImpl>()->forward(x);
        x1 = x1.defined() ? x1 + y : y;
      }
      x1 = act(x1);
      x2 = cheap_rpr_scale_(x1) + cheap_rpr_skip_(x1);
      for (const auto& m : *cheap_rpr_conv_) x2 = x2 + m->as<ConvBnActImpl>()->forward(x1);
      x2 = act(x2);
    }
    auto out = torch::cat({x1, x2}, 1);
    if (!short_conv_) return out;
    if (out.size(1) != out_) out = out.narrow(1, 0, out_);
    return attn_gate(short_conv_, x, out);
  }
  bool reparameterize() override {
    if (primary_conv_) return false;
    auto [pw, pb] = fold(primary_rpr_conv_, nullptr, nullptr, 1, init_, 1);
    auto [cw, cb] = fold(cheap_rpr_conv_, cheap_rpr_scale_, cheap_rpr_skip_, 3, init_, init_);
    // timm keeps each folded conv in a Sequential with its activation: ".0." in the names.
    primary_conv_ = register_module("primary_conv", nn::Sequential(layers::folded_conv(pw, pb, 1, 1)));
    cheap_operation_ = register_module("cheap_operation", nn::Sequential(layers::folded_conv(cw, cb, 1, init_)));
    unregister_module("primary_rpr_conv");
    unregister_module("cheap_rpr_conv");
    unregister_module("cheap_rpr_scale");
    unregister_module("cheap_rpr_skip");
    primary_rpr_conv_ = nullptr;
    cheap_rpr_conv_ = nullptr;
    cheap_rpr_scale_ = nullptr;
    cheap_rpr_skip_ = nullptr;
    return true;
  }

 private:
  int64_t out_, init_;
  std::string act_;
  nn::ModuleList primary_rpr_conv_{nullptr}, cheap_rpr_conv_{nullptr};
  layers::BatchNormAct2d cheap_rpr_skip_{nullptr};
  ConvBnAct cheap_rpr_scale_{nullptr};
  nn::Sequential short_conv_{nullptr}, primary_conv_{nullptr}, cheap_operation_{nullptr};
};
TORCH_MODULE(GhostModuleV3);

using ghost_frame::BlockCfg;

// Ghost bottleneck: ghost expansion, strided depthwise conv (stride > 1), squeeze-excite, ghost
// projection, plus a residual (depthwise + pointwise conv-BN when the shape changes).
class GhostBottleneckImpl : public nn::Module, public layers::Reparameterizable {
 public:
  GhostBottleneckImpl(int64_t in, int64_t mid, int64_t out, int64_t k, int64_t stride, double se, Version v,
                      bool attn)
      : v3_(v == Version::kV3), stride_(stride), mid_(mid), k_(k) {
    if (v3_) {
      ghost1_ = register_module("ghost1", GhostModuleV3(in, mid, true, attn));
    } else {
      ghost1_ = register_module("ghost1", GhostModule(in, mid, true, attn && v == Version::kV2));
    }
    if (stride > 1) {
      if (v3_) {
        dw_rpr_conv_ = register_module("dw_rpr_conv", nn::ModuleList());
        for (int i = 0; i < 3; ++i) dw_rpr_conv_->push_back(ConvBnAct(mid, mid, k, stride, mid, ""));
        dw_rpr_scale_ = register_module("dw_rpr_scale", ConvBnAct(mid, mid, 1, 2, mid, ""));
      } else {
        conv_dw_ = register_module("conv_dw", conv(mid, mid, k, stride, mid));
        bn_dw_ = register_module("bn_dw", layers::BatchNormAct2d(mid, ""));
      }
    }
    if (se > 0) se_ = register_module("se", squeeze_excite(mid, se));
    if (v3_) {
      ghost2_ = register_module("ghost2", GhostModuleV3(mid, out, false, false));
    } else {
      ghost2_ = register_module("ghost2", GhostModule(mid, out, false, false));
    }
    if (in != out || stride != 1) {
      shortcut_ = register_module(
          "shortcut", nn::Sequential(conv(in, in, k, stride, in), layers::BatchNormAct2d(in, ""), conv(in, out, 1),
                                     layers::BatchNormAct2d(out, "")));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = ghost1_.forward(x);
    if (conv_dw_) {
      y = conv_dw_(y);
      if (bn_dw_) y = bn_dw_(y);
    } else if (dw_rpr_conv_) {
      auto z = dw_rpr_scale_(y);
      for (const auto& m : *dw_rpr_conv_) z = z + m->as<ConvBnActImpl>()->forward(y);
      y = z;
    }
    if (se_) y = se_(y);
    y = ghost2_.forward(y);
    return y + (shortcut_ ? shortcut_->forward(x) : x);
  }
  bool reparameterize() override {
    if (!v3_ || stride_ == 1 || conv_dw_) return false;
    auto [w, b] = fold(dw_rpr_conv_, dw_rpr_scale_, nullptr, k_, mid_, mid_);
    unregister_module("dw_rpr_conv");
    unregister_module("dw_rpr_scale");
    dw_rpr_conv_ = nullptr;
    dw_rpr_scale_ = nullptr;
    conv_dw_ = register_module("conv_dw", layers::folded_conv(w, b, stride_, mid_));
    return true;
  }

 private:
  bool v3_;
  int64_t stride_, mid_, k_;
  nn::AnyModule ghost1_, ghost2_;
  nn::Conv2d conv_dw_{nullptr};
  layers::BatchNormAct2d bn_dw_{nullptr};
  nn::ModuleList dw_rpr_conv_{nullptr};
  ConvBnAct dw_rpr_scale_{nullptr};
  SqueezeExcite se_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(GhostBottleneck);

const ghost_frame::StageCfgs& stage_cfgs() {
  static const ghost_frame::StageCfgs cfgs = {
      {{3, 16, 16, 0, 1}},
      {{3, 48, 24, 0, 2}},
      {{3, 72, 24, 0, 1}},
      {{5, 72, 40, 0.25, 2}},
      {{5, 120, 40, 0.25, 1}},
      {{3, 240, 80, 0, 2}},
      {{3, 200, 80, 0, 1}, {3, 184, 80, 0, 1}, {3, 184, 80, 0, 1}, {3, 480, 112, 0.25, 1}, {3, 672, 112, 0.25, 1}},
      {{5, 672, 160, 0.25, 2}},
      {{5, 960, 160, 0, 1}, {5, 960, 160, 0.25, 1}, {5, 960, 160, 0, 1}, {5, 960, 160, 0.25, 1}},
  };
  return cfgs;
}

class GhostNetImpl : public ghost_frame::GhostFrameImpl {
 public:
  GhostNetImpl(const std::string& name, const GhostConfig& c, const ModelArgs& args)
      : GhostFrameImpl(name, args, c.width, stage_cfgs(), [&c](const ghost_frame::BlockArgs& b) {
          return nn::AnyModule(
              GhostBottleneck(b.in, b.mid, b.out, b.cfg.k, b.cfg.s, b.cfg.se, c.version, b.index > 1));
        }) {}
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, GhostConfig>> models = {
      {"ghostnet_050", {0.5, Version::kV1}},   {"ghostnet_100", {1.0, Version::kV1}},
      {"ghostnet_130", {1.3, Version::kV1}},   {"ghostnetv2_100", {1.0, Version::kV2}},
      {"ghostnetv2_130", {1.3, Version::kV2}}, {"ghostnetv2_160", {1.6, Version::kV2}},
      {"ghostnetv3_050", {0.5, Version::kV3}}, {"ghostnetv3_100", {1.0, Version::kV3}},
      {"ghostnetv3_130", {1.3, Version::kV3}}, {"ghostnetv3_160", {1.6, Version::kV3}},
  };
  register_configs<GhostNetImpl>("ghostnet", models);
}

}  // namespace ghostnet
}  // namespace smp::timm
