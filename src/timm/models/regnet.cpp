// RegNet-X/Y/Z and the pre-activation RegNet-V, as timm's regnet.py builds them.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/conv2d_same.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"
#include "timm/layers/pool2d_same.h"

namespace smp::timm {

namespace regnet {
namespace {

namespace nn = torch::nn;

// How a block's shortcut adapts to a change of shape: 1x1 strided conv, 'D'-style average pool +
// 1x1 conv, or no shortcut at all (such blocks are not residual).
enum class Shortcut { kConv1x1, kAvg, kNone };

struct RegNetConfig {
  int64_t depth = 21;
  int64_t w0 = 80;
  double wa = 42.63, wm = 2.66;
  int64_t group_size = 24;
  double bottle_ratio = 1.0;
  double se_ratio = 0.0;
  double group_min_ratio = 0.0;  // > 0: torchvision's rounding of bottleneck widths to the group size
  int64_t stem_width = 32;
  Shortcut downsample = Shortcut::kConv1x1;
  bool linear_out = false;   // no activation after the residual sum
  bool preact = false;       // pre-activation blocks (RegNet-V)
  int64_t num_features = 0;  // > 0: a final 1x1 ConvNormAct of this width before the head
  std::string act = "relu";
  int64_t norm_group_size = 0;  // > 0: GroupNorm of this group size instead of BatchNorm2d
};

RegNetConfig regnet(int64_t w0, double wa, double wm, int64_t group_size, int64_t depth, double se_ratio = 0.0) {
  RegNetConfig c;
  c.w0 = w0;
  c.wa = wa;
  c.wm = wm;
  c.group_size = group_size;
  c.depth = depth;
  c.se_ratio = se_ratio;
  return c;
}

// Python's round(): halves go to the even neighbour.
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

struct StageSpec {
  int64_t width, depth, group_size, stride, dilation;
};

// timm's generate_regnet + adjust_widths_groups_comp: per-block widths from the linear
// parameterisation (in float32, as timm computes them), grouped into stages of equal width.
std::vector<StageSpec> stage_specs(const std::string& name, const RegNetConfig& c, int64_t output_stride) {
  constexpr int64_t kQuant = 8;
  auto widths_cont = torch::arange(c.depth, torch::kFloat32) * c.wa + c.w0;
  auto exps = torch::round(torch::log(widths_cont / c.w0) / std::log(c.wm));
  auto widths_t = (torch::round(torch::pow(c.wm, exps) * c.w0 / kQuant) * kQuant).to(torch::kInt32).contiguous();
  std::vector<StageSpec> stages;
  const auto* w = widths_t.data_ptr<int32_t>();
  for (int64_t i = 0; i < c.depth; ++i) {  // widths never decrease, so equal widths are adjacent
    if (stages.empty() || stages.back().width != w[i]) stages.push_back({w[i], 0, c.group_size, 2, 1});
    ++stages.back().depth;
  }
  if (stages.size() != 4)
    throw std::logic_error(name + ": the RegNet parameters give " + std::to_string(stages.size()) + " stages, not 4");

  int64_t net_stride = 2, dilation = 1;
  for (auto& s : stages) {
    if (net_stride >= output_stride) {
      dilation *= 2;
      s.stride = 1;
    } else {
      net_stride *= 2;
    }
    s.dilation = dilation;

    const auto bottleneck = static_cast<int64_t>(static_cast<double>(s.width) * c.bottle_ratio);
    s.group_size = std::min(s.group_size, bottleneck);
    const int64_t adjusted =
        c.group_min_ratio > 0
            ? layers::make_divisible(static_cast<double>(bottleneck), s.group_size, c.group_min_ratio)
            : py_round(static_cast<double>(bottleneck) / static_cast<double>(s.group_size)) * s.group_size;
    s.width = static_cast<int64_t>(static_cast<double>(adjusted) / c.bottle_ratio);
  }
  return stages;
}

struct BlockArgs {
  int64_t in, out, stride;
  int64_t first_dilation, dilation;  // of the 3x3 conv; the shortcut adapts when they differ
  int64_t group_size;
  const RegNetConfig* cfg;
  double drop_path_rate;  // stochastic depth of the residual branch

  int64_t bottleneck() const { return py_round(static_cast<double>(out) * cfg->bottle_ratio); }
  bool reshapes() const { return in != out || stride != 1 || first_dilation != dilation; }
};

using TensorFn = std::function<torch::Tensor(const torch::Tensor&)>;

// The shortcut module for a block whose shape changes (preact blocks use bare convolutions) and how
// to call it: nn::Sequential cannot be held in an AnyModule.
std::pair<std::shared_ptr<nn::Module>, TensorFn> make_shortcut(const BlockArgs& a, bool preact) {
  auto conv = [&](int64_t stride) {
    if (preact) return nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(a.in, a.out, 1).stride(stride).bias(false)));
    return nn::AnyModule(layers::ConvNormAct(
        layers::ConvNormActOptions(a.in, a.out, 1).stride(stride).act("").norm_group_size(a.cfg->norm_group_size)));
  };
  if (a.cfg->downsample == Shortcut::kConv1x1) {
    auto module = conv(a.stride);
    return {module.ptr(), [module](const torch::Tensor& x) mutable { return module.forward(x); }};
  }
  // Average-pool shortcut: child 0 is the pool (an identity when nothing changes), child 1 the conv.
  nn::Sequential seq;
  const int64_t avg_stride = a.first_dilation == 1 ? a.stride : 1;
  if (a.stride == 1 && a.first_dilation == 1)
    seq->push_back(nn::Identity());
  else if (avg_stride == 1)
    seq->push_back(layers::AvgPool2dSame(2, 1, /*ceil_mode=*/true, /*count_include_pad=*/false));
  else
    seq->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(avg_stride).ceil_mode(true).count_include_pad(false)));
  seq->push_back(conv(1));
  return {seq.ptr(), [seq](const torch::Tensor& x) mutable { return seq->forward(x); }};
}

// Members and the shortcut shared by both block types.
class BlockBase : public nn::Module {
 protected:
  void init_se(const BlockArgs& a) {
    if (a.cfg->se_ratio > 0) {
      const auto rd = py_round(static_cast<double>(a.in) * a.cfg->se_ratio);
      se_ = register_module("se", layers::SEModule(a.bottleneck(), rd, a.cfg->act));
    }
  }
  void init_shortcut(const BlockArgs& a, bool preact) {
    residual_ = !a.reshapes() || a.cfg->downsample != Shortcut::kNone;
    drop_path_rate_ = a.drop_path_rate;
    if (a.reshapes() && residual_) {
      auto [module, fn] = make_shortcut(a, preact);
      register_module("downsample", module);
      downsample_ = std::move(fn);
    }
  }
  torch::Tensor se(const torch::Tensor& x) { return se_ ? se_(x) : x; }
  torch::Tensor add_shortcut(const torch::Tensor& x, const torch::Tensor& shortcut) {
    if (!residual_) return x;
    return layers::drop_path(x, drop_path_rate_, is_training()) + (downsample_ ? downsample_(shortcut) : shortcut);
  }

 private:
  layers::SEModule se_{nullptr};
  TensorFn downsample_;
  bool residual_ = true;
  double drop_path_rate_ = 0.0;
};

// 1x1 -> grouped 3x3 -> SE -> 1x1, each conv with norm (+ activation), activation after the sum.
class BottleneckImpl : public BlockBase {
 public:
  explicit BottleneckImpl(const BlockArgs& a) : act3_(layers::get_act(a.cfg->linear_out ? "" : a.cfg->act)) {
    const auto& cfg = *a.cfg;
    const int64_t mid = a.bottleneck();
    auto cna = [&](int64_t in, int64_t out, int64_t kernel) {
      return layers::ConvNormActOptions(in, out, kernel).act(cfg.act).norm_group_size(cfg.norm_group_size);
    };
    conv1_ = register_module("conv1", layers::ConvNormAct(cna(a.in, mid, 1)));
    conv2_ = register_module(
        "conv2",
        layers::ConvNormAct(cna(mid, mid, 3).stride(a.stride).dilation(a.first_dilation).groups(mid / a.group_size)));
    init_se(a);
    conv3_ = register_module("conv3", layers::ConvNormAct(cna(mid, a.out, 1).act("")));
    init_shortcut(a, false);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv3_(se(conv2_(conv1_(x))));
    return act3_(add_shortcut(y, x));
  }

 private:
  layers::ConvNormAct conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  layers::ActFn act3_;
};
TORCH_MODULE(Bottleneck);

// Pre-activation variant: norm + activation before each conv, the shortcut taken after the first norm.
class PreBottleneckImpl : public BlockBase {
 public:
  explicit PreBottleneckImpl(const BlockArgs& a) {
    const auto& cfg = *a.cfg;
    const int64_t mid = a.bottleneck();
    auto conv = [](int64_t in, int64_t out, int64_t kernel) { return nn::Conv2dOptions(in, out, kernel).bias(false); };
    auto norm = [&](int64_t channels) { return layers::create_norm_act(channels, cfg.act, cfg.norm_group_size); };
    norm1_ = norm(a.in);
    register_module("norm1", norm1_.ptr());
    conv1_ = register_module("conv1", nn::Conv2d(conv(a.in, mid, 1)));
    norm2_ = norm(mid);
    register_module("norm2", norm2_.ptr());
    conv2_ = register_module("conv2", nn::Conv2d(conv(mid, mid, 3)
                                                     .stride(a.stride)
                                                     .padding(layers::get_padding(3, a.stride, a.first_dilation))
                                                     .dilation(a.first_dilation)
                                                     .groups(mid / a.group_size)));
    init_se(a);
    norm3_ = norm(mid);
    register_module("norm3", norm3_.ptr());
    conv3_ = register_module("conv3", nn::Conv2d(conv(mid, a.out, 1)));
    init_shortcut(a, true);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto shortcut = norm1_.forward(x);
    auto y = conv2_(norm2_.forward(conv1_(shortcut)));
    y = conv3_(norm3_.forward(se(y)));
    return add_shortcut(y, shortcut);
  }

 private:
  nn::AnyModule norm1_, norm2_, norm3_;
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
};
TORCH_MODULE(PreBottleneck);

constexpr int64_t kNumFeatures = 5;  // stem, s1..s4

class RegNetImpl : public BackboneImpl {
 public:
  RegNetImpl(const std::string& name, const RegNetConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args), preact_(cfg.preact) {
    // features_only builds the stages up to the last requested feature, like timm's FeatureListNet
    // (feature 0 is the stem, so that is also the number of stages).
    const int64_t num_stages = layers::last_feature_index(args, kNumFeatures, name);

    if (cfg.preact) {
      stem_ = nn::AnyModule(
          nn::Conv2d(nn::Conv2dOptions(args.in_chans(), cfg.stem_width, 3).stride(2).padding(1).bias(false)));
    } else {
      stem_ = nn::AnyModule(layers::ConvNormAct(layers::ConvNormActOptions(args.in_chans(), cfg.stem_width, 3)
                                                    .stride(2)
                                                    .act(cfg.act)
                                                    .norm_group_size(cfg.norm_group_size)));
    }
    register_module("stem", stem_.ptr());
    feature_info_.push_back({"stem", cfg.stem_width, 2});

    int64_t prev = cfg.stem_width, reduction = 2;
    const auto specs = stage_specs(name, cfg, args.output_stride());
    std::vector<int64_t> depths;
    for (const auto& s : specs) depths.push_back(s.depth);
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), depths);
    for (size_t si = 0; si < specs.size(); ++si) {
      const auto& s = specs[si];
      const std::string stage_name = "s" + std::to_string(si + 1);
      reduction *= s.stride;
      feature_info_.push_back({stage_name, s.width, reduction});
      if (static_cast<int64_t>(si) < num_stages) {
        nn::Sequential stage;
        int64_t first_dilation = s.dilation <= 2 ? 1 : 2;
        for (int64_t bi = 0; bi < s.depth; ++bi) {
          const BlockArgs a{bi == 0 ? prev : s.width,
                            s.width,
                            bi == 0 ? s.stride : 1,
                            first_dilation,
                            s.dilation,
                            s.group_size,
                            &cfg,
                            drop_path_rates[si][static_cast<size_t>(bi)]};
          std::string block_name = "b" + std::to_string(bi + 1);
          if (cfg.preact)
            stage->push_back(std::move(block_name), PreBottleneck(a));
          else
            stage->push_back(std::move(block_name), Bottleneck(a));
          first_dilation = s.dilation;
        }
        stages_.push_back(register_module(stage_name, stage));
      }
      prev = s.width;
    }

    if (!args.features_only()) {
      num_features_ = prev;
      if (cfg.num_features > 0) {
        final_conv_ =
            register_module("final_conv", layers::ConvNormAct(layers::ConvNormActOptions(prev, cfg.num_features, 1)
                                                                  .act(cfg.act)
                                                                  .norm_group_size(cfg.norm_group_size)));
        num_features_ = cfg.num_features;
      } else {
        final_act_ = layers::get_act(cfg.linear_out || cfg.preact ? cfg.act : "");
      }
      if (args.num_classes() > 0) {
        auto head = register_module("head", std::make_shared<nn::Module>());
        fc_ = head->register_module("fc", nn::Linear(num_features_, args.num_classes()));
      }
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto built = static_cast<int64_t>(stages_.size()) + 1;
    layers::check_feature_indices(indices, built, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_.forward(x);
    if (indices.front() == 0) out.push_back(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_.forward(x);
    for (auto& stage : stages_) y = stage->forward(y);
    return pool_and_classify(final_conv_ ? final_conv_(y) : final_act_(y), fc_);
  }

  std::string first_conv() const override { return preact_ ? "stem" : "stem.conv"; }

 private:
  bool preact_;
  nn::AnyModule stem_;
  std::vector<nn::Sequential> stages_;
  layers::ConvNormAct final_conv_{nullptr};
  layers::ActFn final_act_;
  nn::Linear fc_{nullptr};
  int64_t num_features_ = 0;
};

}  // namespace

void register_family() {
  auto tv = [](RegNetConfig c) {
    c.group_min_ratio = 0.9;
    return c;
  };
  auto regnet_v = [](RegNetConfig c, Shortcut shortcut) {
    c.preact = true;
    c.act = "silu";
    c.downsample = shortcut;
    return c;
  };
  auto regnet_z = [](RegNetConfig c, int64_t num_features) {
    c.bottle_ratio = 4.0;
    c.downsample = Shortcut::kNone;
    c.linear_out = true;
    c.num_features = num_features;
    c.act = "silu";
    return c;
  };
  auto sgn = regnet(96, 31.41, 2.24, 64, 22, 0.25);
  sgn.act = "silu";
  sgn.norm_group_size = 16;

  const std::vector<std::pair<std::string, RegNetConfig>> models = {
      {"regnetx_002", regnet(24, 36.44, 2.49, 8, 13)},
      {"regnetx_004", regnet(24, 24.48, 2.54, 16, 22)},
      {"regnetx_004_tv", tv(regnet(24, 24.48, 2.54, 16, 22))},
      {"regnetx_006", regnet(48, 36.97, 2.24, 24, 16)},
      {"regnetx_008", regnet(56, 35.73, 2.28, 16, 16)},
      {"regnetx_016", regnet(80, 34.01, 2.25, 24, 18)},
      {"regnetx_032", regnet(88, 26.31, 2.25, 48, 25)},
      {"regnetx_040", regnet(96, 38.65, 2.43, 40, 23)},
      {"regnetx_064", regnet(184, 60.83, 2.07, 56, 17)},
      {"regnetx_080", regnet(80, 49.56, 2.88, 120, 23)},
      {"regnetx_120", regnet(168, 73.36, 2.37, 112, 19)},
      {"regnetx_160", regnet(216, 55.59, 2.1, 128, 22)},
      {"regnetx_320", regnet(320, 69.86, 2.0, 168, 23)},
      {"regnety_002", regnet(24, 36.44, 2.49, 8, 13, 0.25)},
      {"regnety_004", regnet(48, 27.89, 2.09, 8, 16, 0.25)},
      {"regnety_006", regnet(48, 32.54, 2.32, 16, 15, 0.25)},
      {"regnety_008", regnet(56, 38.84, 2.4, 16, 14, 0.25)},
      {"regnety_008_tv", tv(regnet(56, 38.84, 2.4, 16, 14, 0.25))},
      {"regnety_016", regnet(48, 20.71, 2.65, 24, 27, 0.25)},
      {"regnety_032", regnet(80, 42.63, 2.66, 24, 21, 0.25)},
      {"regnety_040", regnet(96, 31.41, 2.24, 64, 22, 0.25)},
      {"regnety_064", regnet(112, 33.22, 2.27, 72, 25, 0.25)},
      {"regnety_080", regnet(192, 76.82, 2.19, 56, 17, 0.25)},
      {"regnety_080_tv", tv(regnet(192, 76.82, 2.19, 56, 17, 0.25))},
      {"regnety_120", regnet(168, 73.36, 2.37, 112, 19, 0.25)},
      {"regnety_160", regnet(200, 106.23, 2.48, 112, 18, 0.25)},
      {"regnety_320", regnet(232, 115.89, 2.53, 232, 20, 0.25)},
      {"regnety_640", regnet(352, 147.48, 2.4, 328, 20, 0.25)},
      {"regnety_1280", regnet(456, 160.83, 2.52, 264, 27, 0.25)},
      {"regnety_2560", regnet(640, 230.83, 2.53, 373, 27, 0.25)},
      {"regnety_040_sgn", sgn},
      {"regnetv_040", regnet_v(regnet(96, 31.41, 2.24, 64, 22, 0.25), Shortcut::kConv1x1)},
      {"regnetv_064", regnet_v(regnet(112, 33.22, 2.27, 72, 25, 0.25), Shortcut::kAvg)},
      {"regnetz_005", regnet_z(regnet(16, 10.7, 2.51, 4, 21, 0.25), 1024)},
      {"regnetz_040", regnet_z(regnet(48, 14.5, 2.226, 8, 28, 0.25), 0)},
      {"regnetz_040_h", regnet_z(regnet(48, 14.5, 2.226, 8, 28, 0.25), 1536)},
  };
  register_configs<RegNetImpl>("regnet", models);
}

}  // namespace regnet
}  // namespace smp::timm
