// Normalisation-free networks (NFNet-F/L, NF-RegNet, NF-ResNet) as timm's nfnet.py builds them:
// pre-activation bottlenecks on scaled weight-standardised convolutions, no norm layers.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/pool2d_same.h"
#include "timm/layers/std_conv.h"

namespace smp::timm {

namespace nfnet {
namespace {

namespace nn = torch::nn;

struct NfConfig {
  std::vector<int64_t> depths;
  std::vector<int64_t> channels;
  double alpha = 0.2;
  std::string stem_type = "3x3";  // "3x3", "7x7_pool" or "deep_quad"
  int64_t stem_chs = 0;           // 0: channels[0]
  int64_t group_size = 0;         // 0: ungrouped
  std::string attn;               // "", "se" or "eca"
  double se_rd_ratio = 1.0 / 16;
  double attn_gain = 2.0;
  double width_factor = 1.0;
  double bottle_ratio = 0.5;
  int64_t num_features = 0;  // > 0: a final 1x1 conv of this width
  int64_t ch_div = 8;
  bool reg = false;         // RegNet-style: widths from the block input, attention mid-block
  bool extra_conv = false;  // a second 3x3 conv (NFNet-F/L)
  bool gamma_in_act = false;
  bool same_padding = false;
  double std_conv_eps = 1e-5;
  bool skipinit = false;
  std::string act = "silu";
};

// Variance-preserving gains of the activations the configurations use (timm's _nonlin_gamma).
double nonlin_gamma(const std::string& act) {
  if (act == "relu") return 1.7139588594436646;
  if (act == "silu") return 1.7881293296813965;
  if (act == "gelu") return 1.7015043497085571;
  throw std::invalid_argument("nfnet: no gamma constant for activation '" + act + "'");
}

// How the convolutions and activations of one network are made.
struct Layers {
  const NfConfig* cfg;
  double conv_gamma;  // folded into every conv's weight scale unless gamma_in_act
  layers::ActFn act;

  explicit Layers(const NfConfig& c) : cfg(&c) {
    const double gamma = nonlin_gamma(c.act);
    auto base = layers::get_act(c.act);
    if (c.gamma_in_act) {
      conv_gamma = 1.0;
      act = [base, gamma](const torch::Tensor& x) { return base(x).mul_(gamma); };
    } else {
      conv_gamma = gamma;
      act = base;
    }
  }

  layers::ScaledStdConv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t dilation = 1,
                               int64_t groups = 1) const {
    return layers::ScaledStdConv2d(layers::StdConv2dOptions(in, out, kernel)
                                       .stride(stride)
                                       .dilation(dilation)
                                       .groups(groups)
                                       .bias(true)
                                       .eps(cfg->std_conv_eps)
                                       .same(cfg->same_padding),
                                   conv_gamma);
  }
};

// 'D'-style shortcut: average pool (when the block downsamples or dilates), then a 1x1 conv.
class DownsampleAvgImpl : public nn::Module {
 public:
  DownsampleAvgImpl(const Layers& l, int64_t in, int64_t out, int64_t stride, int64_t dilation) {
    const int64_t avg_stride = dilation == 1 ? stride : 1;
    if (stride > 1 || dilation > 1) {
      if (avg_stride == 1 && dilation > 1) {
        auto pool = layers::AvgPool2dSame(2, avg_stride, /*ceil_mode=*/true, /*count_include_pad=*/false);
        pool_ = [pool](const torch::Tensor& x) mutable { return pool(x); };
      } else {
        auto pool = nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(avg_stride).ceil_mode(true).count_include_pad(false));
        pool_ = [pool](const torch::Tensor& x) mutable { return pool(x); };
      }
    }
    conv_ = register_module("conv", l.conv(in, out, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv_(pool_ ? pool_(x) : x); }

 private:
  layers::ActFn pool_;
  layers::ScaledStdConv2d conv_{nullptr};
};
TORCH_MODULE(DownsampleAvg);

struct BlockArgs {
  int64_t in, out, stride, dilation, first_dilation;
  double beta, bottle_ratio, drop_path_rate;
};

class NormFreeBlockImpl : public nn::Module {
 public:
  NormFreeBlockImpl(const Layers& l, const BlockArgs& a)
      : act_(l.act), alpha_(l.cfg->alpha), beta_(a.beta), attn_gain_(l.cfg->attn_gain), drop_path_rate_(a.drop_path_rate) {
    const auto& cfg = *l.cfg;
    int64_t mid = layers::make_divisible(static_cast<double>(cfg.reg ? a.in : a.out) * a.bottle_ratio, cfg.ch_div);
    const int64_t groups = cfg.group_size > 0 ? mid / cfg.group_size : 1;
    if (cfg.group_size > 0 && cfg.group_size % cfg.ch_div == 0) mid = cfg.group_size * groups;

    if (a.in != a.out || a.stride != 1 || a.dilation != a.first_dilation)
      downsample_ = register_module("downsample", DownsampleAvg(l, a.in, a.out, a.stride, a.dilation));
    conv1_ = register_module("conv1", l.conv(a.in, mid, 1));
    conv2_ = register_module("conv2", l.conv(mid, mid, 3, a.stride, a.first_dilation, groups));
    if (cfg.extra_conv) conv2b_ = register_module("conv2b", l.conv(mid, mid, 3, 1, a.dilation, groups));
    if (!cfg.attn.empty() && cfg.reg) {
      attn_ = layers::create_attn(cfg.attn, mid, cfg.se_rd_ratio);
      register_module("attn", attn_.ptr());
    }
    conv3_ = register_module("conv3", l.conv(mid, a.out, 1));
    if (!cfg.attn.empty() && !cfg.reg) {
      attn_last_ = layers::create_attn(cfg.attn, a.out, cfg.se_rd_ratio);
      register_module("attn_last", attn_last_.ptr());
    }
    if (cfg.skipinit) skipinit_gain_ = register_parameter("skipinit_gain", torch::zeros({}));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = act_(x);
    if (beta_ != 1.0) out = out * beta_;
    const auto shortcut = downsample_ ? downsample_(out) : x;
    out = conv2_(act_(conv1_(out)));
    if (conv2b_) out = conv2b_(act_(out));
    if (!attn_.is_empty()) out = attn_.forward(out) * attn_gain_;
    out = conv3_(act_(out));
    if (!attn_last_.is_empty()) out = attn_last_.forward(out) * attn_gain_;
    out = layers::drop_path(out, drop_path_rate_, is_training());
    if (skipinit_gain_.defined()) out = out * skipinit_gain_;
    return torch::add(shortcut, out, alpha_);
  }

 private:
  layers::ActFn act_;
  double alpha_, beta_, attn_gain_, drop_path_rate_;
  DownsampleAvg downsample_{nullptr};
  layers::ScaledStdConv2d conv1_{nullptr}, conv2_{nullptr}, conv2b_{nullptr}, conv3_{nullptr};
  nn::AnyModule attn_, attn_last_;
  torch::Tensor skipinit_gain_;
};
TORCH_MODULE(NormFreeBlock);

// The stem's convolutions (conv, or conv1..conv4 for the deep stem) with activations between them
// and an optional max pool; it also hands out the output of its feature conv.
class StemImpl : public nn::Module {
 public:
  StemImpl(const Layers& l, int64_t in, int64_t out)
      : act_(l.act), act_in_place_(l.cfg->act == "relu" || l.cfg->act == "silu") {
    const auto& type = l.cfg->stem_type;
    if (type == "deep_quad") {
      const std::vector<int64_t> chs = {out / 8, out / 4, out / 2, out};
      const std::vector<int64_t> strides = {2, 1, 1, 2};
      for (size_t i = 0; i < chs.size(); ++i) {
        convs_.push_back(register_module("conv" + std::to_string(i + 1), l.conv(in, chs[i], 3, strides[i])));
        in = chs[i];
      }
      feature_conv_ = 2;
      stride_ = 4;
      feature_ = {"stem.conv3", out / 2, 2};
    } else if (type == "3x3" || type == "7x7_pool") {
      const bool pool = type == "7x7_pool";
      convs_.push_back(register_module("conv", l.conv(in, out, pool ? 7 : 3, 2)));
      if (pool) pool_ = register_module("pool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
      stride_ = pool ? 4 : 2;
      feature_ = {"stem.conv", out, 2};
    } else {
      throw std::invalid_argument("nfnet: unsupported stem type '" + type + "'");
    }
  }

  // The stem's output; `feature` (when given) receives the feature conv's output. In timm the deep
  // stem's next activation runs in place on that output when it is ReLU or SiLU (timm's GELU never
  // does), so the feature seen is activated unless the stem is cut right after the feature conv
  // (`stop_at_feature`, then nothing more runs).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* feature = nullptr, bool stop_at_feature = false) {
    auto y = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      if (i > 0) {
        y = act_(y);
        if (feature && i == feature_conv_ + 1 && act_in_place_) *feature = y;
      }
      y = convs_[i](y);
      if (feature && i == feature_conv_ && (stop_at_feature || !act_in_place_ || i + 1 == convs_.size())) {
        *feature = y;
        if (stop_at_feature) return y;
      }
    }
    return pool_ ? pool_(y) : y;
  }

  int64_t stride() const { return stride_; }
  const FeatureInfo& feature() const { return feature_; }
  std::string first_conv() const { return convs_.size() > 1 ? "stem.conv1" : "stem.conv"; }

 private:
  layers::ActFn act_;
  bool act_in_place_;
  std::vector<layers::ScaledStdConv2d> convs_;
  nn::MaxPool2d pool_{nullptr};
  size_t feature_conv_ = 0;
  int64_t stride_ = 2;
  FeatureInfo feature_;
};
TORCH_MODULE(Stem);

constexpr int64_t kNumFeatures = 5;  // stem, stages 0..3 (the last one or final_conv)

class NormFreeNetImpl : public BackboneImpl {
 public:
  NormFreeNetImpl(const std::string& name, const NfConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(cfg), layers_(cfg_) {
    const int64_t last = layers::last_feature_index(args, kNumFeatures, name);
    const int64_t output_stride = args.output_stride();
    if (output_stride != 8 && output_stride != 16 && output_stride != 32)
      throw std::invalid_argument(name + ": output_stride must be 8, 16 or 32");

    const int64_t stem_chs = layers::make_divisible(
        static_cast<double>(cfg_.stem_chs > 0 ? cfg_.stem_chs : cfg_.channels[0]) * cfg_.width_factor, cfg_.ch_div);
    stem_ = register_module("stem", Stem(layers_, args.in_chans(), stem_chs));
    feature_info_.push_back(stem_->feature());

    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), cfg_.depths);
    auto stages = register_module("stages", nn::ModuleList());
    int64_t prev = stem_chs, net_stride = stem_->stride(), dilation = 1;
    double expected_var = 1.0;
    for (size_t si = 0; si < cfg_.depths.size(); ++si) {
      int64_t stride = si == 0 && stem_->stride() > 2 ? 1 : 2;
      if (net_stride >= output_stride && stride > 1) {
        dilation *= stride;
        stride = 1;
      }
      net_stride *= stride;
      int64_t first_dilation = dilation == 1 || dilation == 2 ? 1 : 2;
      const int64_t out =
          layers::make_divisible(static_cast<double>(cfg_.channels[si]) * cfg_.width_factor, cfg_.ch_div);
      const bool build = static_cast<int64_t>(si) < last;
      nn::Sequential stage;
      for (int64_t bi = 0; bi < cfg_.depths[si]; ++bi) {
        const bool first_block = bi == 0 && si == 0;
        const BlockArgs a{prev,
                          out,
                          bi == 0 ? stride : 1,
                          dilation,
                          first_dilation,
                          1.0 / std::sqrt(expected_var),
                          cfg_.reg && first_block ? 1.0 : cfg_.bottle_ratio,
                          dpr[si][static_cast<size_t>(bi)]};
        if (build) stage->push_back(NormFreeBlock(layers_, a));
        if (bi == 0) expected_var = 1.0;
        expected_var += cfg_.alpha * cfg_.alpha;
        first_dilation = dilation;
        prev = out;
      }
      feature_info_.push_back({"stages." + std::to_string(si), prev, net_stride});
      if (build) {
        stages->push_back(stage);
        stages_.push_back(stage);
      }
    }

    num_features_ = prev;
    if (cfg_.num_features > 0) {
      num_features_ =
          layers::make_divisible(cfg_.width_factor * static_cast<double>(cfg_.num_features), cfg_.ch_div);
      feature_info_.back() = {"final_conv", num_features_, net_stride};
      if (last == kNumFeatures - 1) final_conv_ = register_module("final_conv", layers_.conv(prev, num_features_, 1));
    }
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(num_features_, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    torch::Tensor stem_feature;
    auto y = stem_->forward(x, &stem_feature, indices.back() == 0);
    if (indices.front() == 0) out.push_back(stem_feature);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->forward(y);
      if (i == kNumFeatures - 1 && final_conv_) y = final_conv_(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_->forward(x);
    for (auto& stage : stages_) y = stage->forward(y);
    if (final_conv_) y = final_conv_(y);
    return pool_and_classify(layers_.act(y), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return stem_->first_conv(); }

 private:
  NfConfig cfg_;
  Layers layers_;
  Stem stem_{nullptr};
  std::vector<nn::Sequential> stages_;
  layers::ScaledStdConv2d final_conv_{nullptr};
  nn::Linear fc_{nullptr};
  int64_t num_features_ = 0;
};

NfConfig nfres(std::vector<int64_t> depths, const std::string& attn = "", double se_rd_ratio = 1.0 / 16) {
  NfConfig c;
  c.depths = std::move(depths);
  c.channels = {256, 512, 1024, 2048};
  c.stem_type = "7x7_pool";
  c.stem_chs = 64;
  c.bottle_ratio = 0.25;
  c.act = "relu";
  c.attn = attn;
  c.se_rd_ratio = se_rd_ratio;
  return c;
}

NfConfig nfreg(std::vector<int64_t> depths, std::vector<int64_t> channels = {48, 104, 208, 440}) {
  NfConfig c;
  c.depths = std::move(depths);
  c.channels = std::move(channels);
  c.num_features = 1280 * c.channels.back() / 440;
  c.stem_type = "3x3";
  c.group_size = 8;
  c.width_factor = 0.75;
  c.bottle_ratio = 2.25;
  c.reg = true;
  c.attn = "se";
  c.se_rd_ratio = 0.5;
  return c;
}

NfConfig nfnet_cfg(std::vector<int64_t> depths, double feat_mult = 2.0, int64_t group_size = 128,
                   double bottle_ratio = 0.5, const std::string& act = "gelu", const std::string& attn = "se",
                   double se_rd_ratio = 0.5, std::vector<int64_t> channels = {256, 512, 1536, 1536}) {
  NfConfig c;
  c.depths = std::move(depths);
  c.channels = std::move(channels);
  c.num_features = static_cast<int64_t>(static_cast<double>(c.channels.back()) * feat_mult);
  c.stem_type = "deep_quad";
  c.stem_chs = 128;
  c.group_size = group_size;
  c.bottle_ratio = bottle_ratio;
  c.extra_conv = true;
  c.act = act;
  c.attn = attn;
  c.se_rd_ratio = se_rd_ratio;
  return c;
}

// DeepMind's NFNet-F: gamma in the activations, 'SAME' padding, skipinit gains.
NfConfig dm_nfnet(std::vector<int64_t> depths) {
  auto c = nfnet_cfg(std::move(depths));
  c.gamma_in_act = true;
  c.same_padding = true;
  c.skipinit = true;
  return c;
}

NfConfig eca_l(std::vector<int64_t> depths, double feat_mult) {
  return nfnet_cfg(std::move(depths), feat_mult, 64, 0.25, "silu", "eca");
}

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, NfConfig>> models = {
      {"dm_nfnet_f0", dm_nfnet({1, 2, 6, 3})},
      {"dm_nfnet_f1", dm_nfnet({2, 4, 12, 6})},
      {"dm_nfnet_f2", dm_nfnet({3, 6, 18, 9})},
      {"dm_nfnet_f3", dm_nfnet({4, 8, 24, 12})},
      {"dm_nfnet_f4", dm_nfnet({5, 10, 30, 15})},
      {"dm_nfnet_f5", dm_nfnet({6, 12, 36, 18})},
      {"dm_nfnet_f6", dm_nfnet({7, 14, 42, 21})},
      {"nfnet_f0", nfnet_cfg({1, 2, 6, 3})},
      {"nfnet_f1", nfnet_cfg({2, 4, 12, 6})},
      {"nfnet_f2", nfnet_cfg({3, 6, 18, 9})},
      {"nfnet_f3", nfnet_cfg({4, 8, 24, 12})},
      {"nfnet_f4", nfnet_cfg({5, 10, 30, 15})},
      {"nfnet_f5", nfnet_cfg({6, 12, 36, 18})},
      {"nfnet_f6", nfnet_cfg({7, 14, 42, 21})},
      {"nfnet_f7", nfnet_cfg({8, 16, 48, 24})},
      {"nfnet_l0", nfnet_cfg({1, 2, 6, 3}, 1.5, 64, 0.25, "silu", "se", 0.25)},
      {"eca_nfnet_l0", eca_l({1, 2, 6, 3}, 1.5)},
      {"eca_nfnet_l1", eca_l({2, 4, 12, 6}, 2.0)},
      {"eca_nfnet_l2", eca_l({3, 6, 18, 9}, 2.0)},
      {"eca_nfnet_l3", eca_l({4, 8, 24, 12}, 2.0)},
      {"nf_regnet_b0", nfreg({1, 3, 6, 6})},
      {"nf_regnet_b1", nfreg({2, 4, 7, 7})},
      {"nf_regnet_b2", nfreg({2, 4, 8, 8}, {56, 112, 232, 488})},
      {"nf_regnet_b3", nfreg({2, 5, 9, 9}, {56, 128, 248, 528})},
      {"nf_regnet_b4", nfreg({2, 6, 11, 11}, {64, 144, 288, 616})},
      {"nf_regnet_b5", nfreg({3, 7, 14, 14}, {80, 168, 336, 704})},
      {"nf_resnet26", nfres({2, 2, 2, 2})},
      {"nf_resnet50", nfres({3, 4, 6, 3})},
      {"nf_resnet101", nfres({3, 4, 23, 3})},
      {"nf_seresnet26", nfres({2, 2, 2, 2}, "se")},
      {"nf_seresnet50", nfres({3, 4, 6, 3}, "se")},
      {"nf_seresnet101", nfres({3, 4, 23, 3}, "se")},
      {"nf_ecaresnet26", nfres({2, 2, 2, 2}, "eca")},
      {"nf_ecaresnet50", nfres({3, 4, 6, 3}, "eca")},
      {"nf_ecaresnet101", nfres({3, 4, 23, 3}, "eca")},
      {"test_nfnet", nfnet_cfg({1, 1, 1, 1}, 1.5, 8, 0.25, "silu", "se", 0.25, {32, 64, 96, 128})},
  };
  register_configs<NormFreeNetImpl>("nfnet", models, [](ModelEntry& e, const NfConfig&) {
    if (e.name == "test_nfnet") e.mean = e.std = {0.5, 0.5, 0.5};
  });
}

}  // namespace nfnet
}  // namespace smp::timm
