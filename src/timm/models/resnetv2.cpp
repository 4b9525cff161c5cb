// ResNetV2 as timm's resnetv2.py builds it: pre-activation bottleneck/basic blocks (BiT with weight
// standardisation and GroupNorm, or plain convs with BatchNorm), and the post-activation variant the
// ViT hybrids embed.
#include "timm/models/resnetv2.h"

#include <limits>

#include "timm/families.h"
#include "timm/layers/conv2d_same.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/evo_norm.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"
#include "timm/layers/pool2d_same.h"
#include "timm/layers/std_conv.h"

namespace smp::timm {

namespace resnetv2 {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

// timm's FilterResponseNormTlu2d: x / rms over H, W, an affine transform, then max(x, tau) (the
// thresholded linear unit, only with the activation).
class FilterResponseNormTlu2dImpl : public nn::Module {
 public:
  FilterResponseNormTlu2dImpl(int64_t channels, bool apply_act, double eps = 1e-5) : eps_(eps) {
    weight = register_parameter("weight", torch::ones({channels}));
    bias = register_parameter("bias", torch::zeros({channels}));
    if (apply_act) tau = register_parameter("tau", torch::zeros({channels}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x * torch::rsqrt(x.square().mean({2, 3}, /*keepdim=*/true) + eps_);
    y = torch::addcmul(bias.view({1, -1, 1, 1}), y, weight.view({1, -1, 1, 1}));
    return tau.defined() ? torch::maximum(y, tau.view({1, -1, 1, 1})) : y;
  }
  torch::Tensor weight, bias, tau;

 private:
  double eps_;
};
TORCH_MODULE(FilterResponseNormTlu2d);

// The configuration's norm(+activation) layer; `apply_act` false gives the plain norm.
nn::AnyModule make_norm(const ResNetV2Config& cfg, int64_t channels, bool apply_act = true) {
  const std::string act = apply_act ? cfg.act : "";
  if (cfg.norm == "gn") return nn::AnyModule(layers::GroupNormAct(32, channels, act));
  if (cfg.norm == "bn") return nn::AnyModule(layers::BatchNormAct2d(channels, act));
  if (cfg.norm == "evos") return nn::AnyModule(layers::EvoNorm2dS0(channels, 32, 0, apply_act));
  if (cfg.norm == "frn") return nn::AnyModule(FilterResponseNormTlu2d(channels, apply_act));
  throw std::invalid_argument("resnetv2: unknown norm '" + cfg.norm + "'");
}

nn::AnyModule make_conv(const ResNetV2Config& cfg, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                        int64_t dilation = 1, int64_t groups = 1) {
  if (cfg.conv == "conv")
    return nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                                        .stride(stride)
                                        .dilation(dilation)
                                        .groups(groups)
                                        .padding(layers::get_padding(kernel, stride, dilation))
                                        .bias(false)));
  if (cfg.conv == "std" || cfg.conv == "std_same")
    return nn::AnyModule(layers::StdConv2d(layers::StdConv2dOptions(in, out, kernel)
                                               .stride(stride)
                                               .dilation(dilation)
                                               .groups(groups)
                                               .eps(cfg.std_conv_eps)
                                               .same(cfg.conv == "std_same")));
  throw std::invalid_argument("resnetv2: unknown conv '" + cfg.conv + "'");
}

struct BlockArgs {
  int64_t in, out, stride, dilation, first_dilation;
  bool project;  // the stage's first block: it gets a shortcut projection (if its shape changes, for basic)
  double drop_path_rate;
};

// The shortcut projection: strided 1x1 conv, or average pool + 1x1 conv; normed unless pre-activation.
class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(const ResNetV2Config& cfg, const BlockArgs& a) {
    if (cfg.avg_down) {
      const int64_t avg_stride = a.dilation == 1 ? a.stride : 1;
      if (a.stride > 1 || a.dilation > 1) {
        if (avg_stride == 1 && a.dilation > 1) {
          auto pool = layers::AvgPool2dSame(2, avg_stride, true, false);
          pool_ = [pool](const torch::Tensor& x) mutable { return pool(x); };
        } else {
          auto pool = nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(avg_stride).ceil_mode(true).count_include_pad(false));
          pool_ = [pool](const torch::Tensor& x) mutable { return pool(x); };
        }
      }
      conv_ = make_conv(cfg, a.in, a.out, 1);
    } else {
      conv_ = make_conv(cfg, a.in, a.out, 1, a.stride);
    }
    register_module("conv", conv_.ptr());
    if (!cfg.preact) {
      norm_ = make_norm(cfg, a.out, false);
      register_module("norm", norm_.ptr());
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv_.forward(pool_ ? pool_(x) : x);
    return norm_.is_empty() ? y : norm_.forward(y);
  }

 private:
  std::function<torch::Tensor(const torch::Tensor&)> pool_;
  nn::AnyModule conv_, norm_;
};
TORCH_MODULE(Downsample);

// Pre-activation blocks: norm1 feeds both the residual branch and the projection shortcut.
class PreActBlockImpl : public nn::Module {
 public:
  PreActBlockImpl(const ResNetV2Config& cfg, const BlockArgs& a) : drop_path_rate_(a.drop_path_rate) {
    const int64_t mid = layers::make_divisible(static_cast<double>(a.out) * cfg.bottle_ratio);
    const bool reshapes = a.stride != 1 || a.first_dilation != a.dilation || a.in != a.out;
    if (a.project && (!cfg.basic || reshapes)) downsample_ = register_module("downsample", Downsample(cfg, a));
    auto add = [this](const std::string& name, nn::AnyModule m) {
      register_module(name, m.ptr());
      return m;
    };
    norm1_ = add("norm1", make_norm(cfg, a.in));
    if (cfg.basic) {
      conv1_ = add("conv1", make_conv(cfg, a.in, mid, 3, a.stride, a.first_dilation));
      norm2_ = add("norm2", make_norm(cfg, mid));
      conv2_ = add("conv2", make_conv(cfg, mid, a.out, 3, 1, a.dilation));
    } else {
      conv1_ = add("conv1", make_conv(cfg, a.in, mid, 1));
      norm2_ = add("norm2", make_norm(cfg, mid));
      conv2_ = add("conv2", make_conv(cfg, mid, mid, 3, a.stride, a.first_dilation));
      norm3_ = add("norm3", make_norm(cfg, mid));
      conv3_ = add("conv3", make_conv(cfg, mid, a.out, 1));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto preact = norm1_.forward(x);
    const auto shortcut = downsample_ ? downsample_(preact) : x;
    auto y = conv2_.forward(norm2_.forward(conv1_.forward(preact)));
    if (!conv3_.is_empty()) y = conv3_.forward(norm3_.forward(y));
    return layers::drop_path(y, drop_path_rate_, is_training()) + shortcut;
  }

 private:
  double drop_path_rate_;
  Downsample downsample_{nullptr};
  nn::AnyModule norm1_, conv1_, norm2_, conv2_, norm3_, conv3_;
};
TORCH_MODULE(PreActBlock);

// Post-activation bottleneck: conv/norm x3, activation after the residual sum.
class BottleneckImpl : public nn::Module {
 public:
  BottleneckImpl(const ResNetV2Config& cfg, const BlockArgs& a)
      : drop_path_rate_(a.drop_path_rate), act_(layers::get_act(cfg.act)) {
    const int64_t mid = layers::make_divisible(static_cast<double>(a.out) * cfg.bottle_ratio);
    if (a.project) downsample_ = register_module("downsample", Downsample(cfg, a));
    auto add = [this](const std::string& name, nn::AnyModule m) {
      register_module(name, m.ptr());
      return m;
    };
    conv1_ = add("conv1", make_conv(cfg, a.in, mid, 1));
    norm1_ = add("norm1", make_norm(cfg, mid));
    conv2_ = add("conv2", make_conv(cfg, mid, mid, 3, a.stride, a.first_dilation));
    norm2_ = add("norm2", make_norm(cfg, mid));
    conv3_ = add("conv3", make_conv(cfg, mid, a.out, 1));
    norm3_ = add("norm3", make_norm(cfg, a.out, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto shortcut = downsample_ ? downsample_(x) : x;
    auto y = norm1_.forward(conv1_.forward(x));
    y = norm2_.forward(conv2_.forward(y));
    y = norm3_.forward(conv3_.forward(y));
    return act_(layers::drop_path(y, drop_path_rate_, is_training()) + shortcut);
  }

 private:
  double drop_path_rate_;
  layers::ActFn act_;
  Downsample downsample_{nullptr};
  nn::AnyModule conv1_, norm1_, conv2_, norm2_, conv3_, norm3_;
};
TORCH_MODULE(Bottleneck);

bool is_stem_deep(const std::string& stem_type) {
  return stem_type.find("deep") != std::string::npos || stem_type.find("tiered") != std::string::npos;
}

constexpr int64_t kNumFeatures = 5;  // stem, stages 0..3

}  // namespace

ResNetV2Impl::ResNetV2Impl(const std::string& name, const ResNetV2Config& cfg, const ModelArgs& args)
    : BackboneImpl(name, args), cfg_(cfg) {
  const int64_t last = layers::last_feature_index(args, kNumFeatures, name);
  const int64_t output_stride = args.output_stride();
  if (output_stride != 8 && output_stride != 16 && output_stride != 32)
    throw std::invalid_argument(name + ": output_stride must be 8, 16 or 32");
  if (cfg.basic && !cfg.preact) throw std::invalid_argument(name + ": basic blocks are pre-activation only");

  // Stem: conv(s) and norms as named children, then the max pool (no parameters).
  const int64_t stem_chs = layers::make_divisible(static_cast<double>(cfg.stem_chs * cfg.width_factor));
  auto stem = register_module("stem", std::make_shared<nn::Module>());
  auto add_step = [&](const std::string& step_name, nn::AnyModule m) {
    stem->register_module(step_name, m.ptr());
    stem_steps_.push_back(std::move(m));
  };
  std::string stem_feature;
  if (is_stem_deep(cfg.stem_type)) {
    const bool tiered = cfg.stem_type.find("tiered") != std::string::npos;
    const int64_t c0 = tiered ? 3 * stem_chs / 8 : stem_chs / 2, c1 = stem_chs / 2;
    add_step("conv1", make_conv(cfg, args.in_chans(), c0, 3, 2));
    add_step("norm1", make_norm(cfg, c0));
    add_step("conv2", make_conv(cfg, c0, c1, 3));
    add_step("norm2", make_norm(cfg, c1));
    add_step("conv3", make_conv(cfg, c1, stem_chs, 3));
    if (!cfg.preact) add_step("norm3", make_norm(cfg, stem_chs));
    stem_feature = cfg.preact ? "stem.conv3" : "stem.norm";
    stem_feature_step_ = cfg.preact ? 4 : 5;
  } else {
    add_step("conv", make_conv(cfg, args.in_chans(), stem_chs, 7, 2));
    if (!cfg.preact) add_step("norm", make_norm(cfg, stem_chs));
    stem_feature = cfg.preact ? "stem.conv" : "stem.norm";
    stem_feature_step_ = cfg.preact ? 0 : 1;
  }
  if (cfg.stem_type.find("fixed") != std::string::npos)
    stem_pool_ = "fixed";
  else if (cfg.stem_type.find("same") != std::string::npos)
    stem_pool_ = "same";
  feature_info_.push_back({stem_feature, stem_chs, 2});

  const auto dpr = layers::drop_path_rates(args.drop_path_rate(), cfg.layers);
  auto stages = register_module("stages", std::make_shared<nn::Module>());
  int64_t prev = stem_chs, curr_stride = 4, dilation = 1;
  for (size_t si = 0; si < cfg.layers.size(); ++si) {
    const int64_t out = layers::make_divisible(static_cast<double>(cfg.channels[si] * cfg.width_factor));
    int64_t stride = si == 0 ? 1 : 2;
    if (curr_stride >= output_stride) {
      dilation *= stride;
      stride = 1;
    }
    if (static_cast<int64_t>(si) < last) {
      int64_t first_dilation = dilation == 1 || dilation == 2 ? 1 : 2;
      nn::Sequential blocks;
      for (int64_t bi = 0; bi < cfg.layers[si]; ++bi) {
        const BlockArgs a{bi == 0 ? prev : out, out, bi == 0 ? stride : 1, dilation, first_dilation, bi == 0,
                          dpr[si][static_cast<size_t>(bi)]};
        if (cfg.preact)
          blocks->push_back(PreActBlock(cfg, a));
        else
          blocks->push_back(Bottleneck(cfg, a));
        first_dilation = dilation;
      }
      auto stage = stages->register_module(std::to_string(si), std::make_shared<nn::Module>());
      stages_.push_back(stage->register_module("blocks", blocks));
    }
    prev = out;
    curr_stride *= stride;
    feature_info_.push_back({"stages." + std::to_string(si), prev, curr_stride});
  }
  num_features_ = prev;

  if (!args.features_only()) {
    if (cfg.preact) {
      norm_ = make_norm(cfg, num_features_);
      register_module("norm", norm_.ptr());
    }
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Conv2d(nn::Conv2dOptions(num_features_, args.num_classes(), 1)));
    }
  }
}

torch::Tensor ResNetV2Impl::run_stem(const torch::Tensor& x, torch::Tensor* feature) {
  auto y = x;
  for (size_t i = 0; i < stem_steps_.size(); ++i) {
    y = stem_steps_[i].forward(y);
    if (feature && i == stem_feature_step_) *feature = y;
  }
  if (stem_pool_ == "fixed") return F::max_pool2d(F::pad(y, F::PadFuncOptions({1, 1, 1, 1})), F::MaxPool2dFuncOptions(3).stride(2));
  if (stem_pool_ == "same") {
    // TensorFlow 'SAME' max pooling: -inf padding, so the padding never wins the max.
    auto amount = [](int64_t size) { return std::max<int64_t>(((size + 1) / 2 - 1) * 2 + 3 - size, 0); };
    const int64_t ph = amount(y.size(-2)), pw = amount(y.size(-1));
    if (ph > 0 || pw > 0)
      y = F::pad(y, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2})
                        .value(-std::numeric_limits<double>::infinity()));
    return F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2));
  }
  return F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
}

std::vector<torch::Tensor> ResNetV2Impl::forward_intermediates(const torch::Tensor& x,
                                                               const std::vector<int64_t>& indices) {
  layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()) + 1, model_name());
  std::vector<torch::Tensor> out;
  if (indices.empty()) return out;
  torch::Tensor stem_feature;
  auto y = run_stem(x, &stem_feature);
  if (indices.front() == 0) out.push_back(stem_feature);
  for (int64_t i = 1; out.size() < indices.size(); ++i) {
    y = stages_[static_cast<size_t>(i - 1)]->forward(y);
    if (i == indices[out.size()]) out.push_back(y);
  }
  return out;
}

torch::Tensor ResNetV2Impl::forward_features(const torch::Tensor& x) {
  auto y = run_stem(x, nullptr);
  for (auto& stage : stages_) y = stage->forward(y);
  return norm_.is_empty() ? y : norm_.forward(y);
}

torch::Tensor ResNetV2Impl::forward(const torch::Tensor& x) {
  check_classifier();
  auto y = forward_features(x).mean({2, 3}, /*keepdim=*/true);
  if (!fc_) return y.flatten(1);
  return fc_(layers::dropout(y, head_drop_rate(), is_training())).flatten(1);
}

std::string ResNetV2Impl::first_conv() const { return is_stem_deep(cfg_.stem_type) ? "stem.conv1" : "stem.conv"; }

void register_family() {
  auto bit = [](std::vector<int64_t> layers, int64_t wf) {
    ResNetV2Config c;
    c.layers = std::move(layers);
    c.width_factor = wf;
    c.stem_type = "fixed";
    return c;
  };
  // timm's non-BiT ResNetV2s: plain convs and BatchNorm (or the given norm).
  auto v2 = [](std::vector<int64_t> layers, const std::string& stem = "", const std::string& norm = "bn") {
    ResNetV2Config c;
    c.layers = std::move(layers);
    c.conv = "conv";
    c.norm = norm;
    c.stem_type = stem;
    c.avg_down = !stem.empty();
    return c;
  };
  auto basic = [&](std::vector<int64_t> layers, const std::string& stem = "") {
    auto c = v2(std::move(layers), stem);
    c.channels = {64, 128, 256, 512};
    c.basic = true;
    c.bottle_ratio = 1.0;
    return c;
  };
  const std::vector<std::pair<std::string, ResNetV2Config>> models = {
      {"resnetv2_50x1_bit", bit({3, 4, 6, 3}, 1)},
      {"resnetv2_50x3_bit", bit({3, 4, 6, 3}, 3)},
      {"resnetv2_101x1_bit", bit({3, 4, 23, 3}, 1)},
      {"resnetv2_101x3_bit", bit({3, 4, 23, 3}, 3)},
      {"resnetv2_152x2_bit", bit({3, 8, 36, 3}, 2)},
      {"resnetv2_152x4_bit", bit({3, 8, 36, 3}, 4)},
      {"resnetv2_18", basic({2, 2, 2, 2})},
      {"resnetv2_18d", basic({2, 2, 2, 2}, "deep")},
      {"resnetv2_34", basic({3, 4, 6, 3})},
      {"resnetv2_34d", basic({3, 4, 6, 3}, "deep")},
      {"resnetv2_50", v2({3, 4, 6, 3})},
      {"resnetv2_50d", v2({3, 4, 6, 3}, "deep")},
      {"resnetv2_50t", v2({3, 4, 6, 3}, "tiered")},
      {"resnetv2_101", v2({3, 4, 23, 3})},
      {"resnetv2_101d", v2({3, 4, 23, 3}, "deep")},
      {"resnetv2_152", v2({3, 8, 36, 3})},
      {"resnetv2_152d", v2({3, 8, 36, 3}, "deep")},
      {"resnetv2_50d_gn", v2({3, 4, 6, 3}, "deep", "gn")},
      {"resnetv2_50d_evos", v2({3, 4, 6, 3}, "deep", "evos")},
      {"resnetv2_50d_frn", v2({3, 4, 6, 3}, "deep", "frn")},
  };
  register_configs<ResNetV2Impl>("resnetv2", models, [](ModelEntry& e, const ResNetV2Config&) {
    e.mean = e.std = {0.5, 0.5, 0.5};  // timm's IMAGENET_INCEPTION_MEAN/STD for every ResNetV2
  });
}

}  // namespace resnetv2
}  // namespace smp::timm
