// timm's CSPNet family: CSPResNet(X)t, CSPDarkNet, DarkNet and the CS3 (YOLO-style) variants.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace cspnet {
namespace {

namespace nn = torch::nn;

enum class StageType { kCsp, kCs3, kDark };
enum class BlockType { kBottle, kDark, kEdge };

struct StemCfg {
  std::vector<int64_t> out_chs{32};
  int64_t stride = 2, kernel_size = 3;
  int64_t padding = -1;  // -1: the symmetric default
  bool max_pool = false;
};

// One stage's settings (timm expands scalars to every stage; here each stage carries its own).
struct StageCfg {
  int64_t depth = 1, out_chs = 64, stride = 2, groups = 1;
  double block_ratio = 1.0, bottle_ratio = 1.0, expand_ratio = 1.0;
  bool avg_down = false, cross_linear = false, down_growth = false;
  bool se = false;
  double se_rd_ratio = 1.0 / 16;
  StageType stage_type = StageType::kCsp;
  BlockType block_type = BlockType::kBottle;
};

struct CspCfg {
  StemCfg stem;
  std::vector<StageCfg> stages;
  std::string act = "leaky_relu";
};

// Python's round() for the channel ratios (halves go to the even neighbour).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

layers::ConvNormAct cna(int64_t in, int64_t out, int64_t k, const std::string& act, int64_t stride = 1,
                        int64_t dilation = 1, int64_t groups = 1) {
  return layers::ConvNormAct(
      layers::ConvNormActOptions(in, out, k).stride(stride).dilation(dilation).groups(groups).act(act));
}

struct BlockArgs {
  int64_t in, out, dilation, groups;
  double bottle_ratio;
  std::string act;
  bool se;
  double se_rd_ratio;
  double drop_path;
};

nn::AnyModule make_attn(const BlockArgs& a, int64_t channels) {
  // cspnet hands its own activation to the SE module.
  const auto rd = layers::make_divisible(static_cast<double>(channels) * a.se_rd_ratio, 8, 0.0, 0.0);
  return nn::AnyModule(layers::SEModule(channels, rd, a.act));
}

// 1x1 -> 3x3 (grouped) -> 1x1 with an activation after the residual sum.
class BottleneckBlockImpl : public nn::Module {
 public:
  explicit BottleneckBlockImpl(const BlockArgs& a) : drop_path_(a.drop_path), act_(layers::get_act(a.act)) {
    const auto mid = py_round(static_cast<double>(a.out) * a.bottle_ratio);
    conv1_ = register_module("conv1", cna(a.in, mid, 1, a.act));
    conv2_ = register_module("conv2", cna(mid, mid, 3, a.act, 1, a.dilation, a.groups));
    if (a.se) {
      attn2_ = make_attn(a, mid);
      register_module("attn2", attn2_.ptr());
    }
    conv3_ = register_module("conv3", cna(mid, a.out, 1, ""));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv2_(conv1_(x));
    if (!attn2_.is_empty()) y = attn2_.forward(y);
    y = conv3_(y);
    return act_(layers::drop_path(y, drop_path_, is_training()) + x);
  }

 private:
  double drop_path_;
  layers::ActFn act_;
  layers::ConvNormAct conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::AnyModule attn2_;
};
TORCH_MODULE(BottleneckBlock);

// DarkBlock (1x1 -> 3x3) and EdgeBlock (3x3 -> 1x1): both residual without a final activation.
class TwoConvBlockImpl : public nn::Module {
 public:
  TwoConvBlockImpl(const BlockArgs& a, bool edge) : drop_path_(a.drop_path) {
    const auto mid = py_round(static_cast<double>(a.out) * a.bottle_ratio);
    if (edge) {
      conv1_ = register_module("conv1", cna(a.in, mid, 3, a.act, 1, a.dilation, a.groups));
    } else {
      conv1_ = register_module("conv1", cna(a.in, mid, 1, a.act));
    }
    if (a.se) {
      attn_ = make_attn(a, mid);
      register_module("attn", attn_.ptr());
    }
    if (edge) {
      conv2_ = register_module("conv2", cna(mid, a.out, 1, a.act));
    } else {
      conv2_ = register_module("conv2", cna(mid, a.out, 3, a.act, 1, a.dilation, a.groups));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv1_(x);
    if (!attn_.is_empty()) y = attn_.forward(y);
    y = conv2_(y);
    return layers::drop_path(y, drop_path_, is_training()) + x;
  }

 private:
  double drop_path_;
  layers::ConvNormAct conv1_{nullptr}, conv2_{nullptr};
  nn::AnyModule attn_;
};
TORCH_MODULE(TwoConvBlock);

// The downsampling entry of a stage: strided 3x3 ConvNormAct, or (avg_down) 2x2 average pool + 1x1.
class DownImpl : public nn::Module {
 public:
  DownImpl(int64_t in, int64_t out, int64_t stride, int64_t dilation, int64_t groups, bool avg_down,
           const std::string& act)
      : avg_pool_(avg_down && stride == 2) {
    if (avg_down)
      conv_ = register_module("1", cna(in, out, 1, act, 1, 1, groups));
    else
      conv_ = cna(in, out, 3, act, stride, dilation, groups);
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv_(avg_pool_ ? torch::avg_pool2d(x, 2, 2) : x); }
  layers::ConvNormAct conv() const { return conv_; }

 private:
  bool avg_pool_;
  layers::ConvNormAct conv_{nullptr};
};
TORCH_MODULE(Down);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, const StageCfg& c, int64_t stride, int64_t first_dilation, int64_t dilation,
            const std::string& act, const std::vector<double>& dpr)
      : type_(c.stage_type) {
    const bool cross = c.stage_type != StageType::kDark;
    int64_t prev = in;
    // DarkStage always downsamples; the cross stages only when the stride or dilation changes.
    if (!cross || stride != 1 || first_dilation != dilation) {
      const int64_t down_chs = (!cross || c.avg_down || c.down_growth) ? c.out_chs : in;
      Down down(in, down_chs, stride, first_dilation, c.groups, c.avg_down, act);
      if (c.avg_down)
        register_module("conv_down", down);
      else
        register_module("conv_down", down->conv());
      down_ = down;
      // timm's cross stages continue from the non-growth width even when avg_down widens it.
      prev = cross && !c.down_growth ? in : down_chs;
    }
    const int64_t block_out = py_round(static_cast<double>(c.out_chs) * c.block_ratio);
    if (cross) {
      exp_chs_ = py_round(static_cast<double>(c.out_chs) * c.expand_ratio);
      conv_exp_ = register_module("conv_exp", cna(prev, exp_chs_, 1, c.cross_linear ? "" : act));
      prev = exp_chs_ / 2;
    }
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < c.depth; ++i) {
      const BlockArgs a{prev, block_out, dilation, c.groups, c.bottle_ratio, act, c.se, c.se_rd_ratio,
                        dpr[static_cast<size_t>(i)]};
      if (c.block_type == BlockType::kBottle)
        blocks_->push_back(std::to_string(i), BottleneckBlock(a));
      else
        blocks_->push_back(std::to_string(i), TwoConvBlock(a, c.block_type == BlockType::kEdge));
      prev = block_out;
    }
    if (type_ == StageType::kCsp)
      conv_transition_b_ = register_module("conv_transition_b", cna(prev, exp_chs_ / 2, 1, act));
    if (cross) conv_transition_ = register_module("conv_transition", cna(exp_chs_, c.out_chs, 1, act));
  }

  torch::Tensor forward(const torch::Tensor& input) {
    auto x = down_ ? down_(input) : input;
    if (type_ == StageType::kDark) return blocks_->forward(x);
    x = conv_exp_(x);
    auto parts = x.split(exp_chs_ / 2, 1);
    if (type_ == StageType::kCsp) {
      // CrossStage: the blocks run on the second half, the first half crosses over.
      auto xb = conv_transition_b_(blocks_->forward(parts[1]));
      return conv_transition_(torch::cat({parts[0], xb}, 1));
    }
    // CrossStage3: the blocks run on the first half.
    return conv_transition_(torch::cat({blocks_->forward(parts[0]), parts[1]}, 1));
  }

 private:
  StageType type_;
  int64_t exp_chs_ = 0;
  Down down_{nullptr};
  layers::ConvNormAct conv_exp_{nullptr}, conv_transition_b_{nullptr}, conv_transition_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Stage);

class CspNetImpl : public BackboneImpl {
 public:
  CspNetImpl(const std::string& name, const CspCfg& cfg, const ModelArgs& args) : BackboneImpl(name, args) {
    const auto os = args.output_stride();
    if (os != 8 && os != 16 && os != 32)
      throw std::invalid_argument(name + " supports output_stride 8, 16 or 32 (got " + std::to_string(os) + ")");

    // Stem, with its feature entries as timm's create_csp_stem lists them.
    const auto& sc = cfg.stem;
    stem_ = register_module("stem", nn::Sequential());
    std::vector<FeatureInfo> stem_feats;
    FeatureInfo prev_feat;
    bool have_prev = false;
    int64_t prev = args.in_chans(), stem_stride = 1;
    const auto last_idx = static_cast<int64_t>(sc.out_chs.size()) - 1;
    for (int64_t i = 0; i <= last_idx; ++i) {
      const auto chs = sc.out_chs[static_cast<size_t>(i)];
      const int64_t conv_stride =
          ((i == 0 && sc.stride > 1) || (i == last_idx && sc.stride > 2 && !sc.max_pool)) ? 2 : 1;
      if (conv_stride > 1 && have_prev) stem_feats.push_back(prev_feat);
      const auto conv_name = "conv" + std::to_string(i + 1);
      auto conv = cna(prev, chs, sc.kernel_size, cfg.act, conv_stride);
      if (i == 0 && sc.padding >= 0) {
        // The focus stem's explicit padding (6x6 kernel, padding 2) differs from the symmetric default.
        conv->named_children()["conv"]->as<nn::Conv2d>()->options.padding(sc.padding);
      }
      stem_->push_back(std::string(conv_name), conv);
      stem_stride *= conv_stride;
      prev = chs;
      prev_feat = {"stem." + conv_name, prev, stem_stride};
      have_prev = true;
    }
    if (sc.max_pool) {
      stem_feats.push_back(prev_feat);
      stem_->push_back("pool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
      stem_stride *= 2;
      prev_feat = {"stem.pool", prev, stem_stride};
    }
    feature_info_ = stem_feats;
    for (const auto& f : stem_feats) {
      int64_t idx = 0;
      for (const auto& item : stem_->named_children()) {
        if ("stem." + item.key() == f.module) break;
        ++idx;
      }
      feature_sources_.push_back({-1, idx});
    }

    // Stage plan (stride/dilation) and features, before building, so features_only can stop early.
    std::vector<int64_t> depths;
    for (const auto& s : cfg.stages) depths.push_back(s.depth);
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), depths);
    struct Plan {
      int64_t stride, first_dilation, dilation;
    };
    std::vector<Plan> plans;
    int64_t dilation = 1, net_stride = stem_stride;
    for (size_t si = 0; si < cfg.stages.size(); ++si) {
      int64_t stride = cfg.stages[si].stride;
      if (stride != 1) {
        feature_info_.push_back(prev_feat);
        feature_sources_.push_back(si == 0 ? std::pair<int64_t, int64_t>{-1, static_cast<int64_t>(stem_->size()) - 1}
                                           : std::pair<int64_t, int64_t>{static_cast<int64_t>(si) - 1, 0});
      }
      if (net_stride >= os && stride > 1) {
        dilation *= stride;
        stride = 1;
      }
      net_stride *= stride;
      plans.push_back({stride, dilation == 1 || dilation == 2 ? 1 : 2, dilation});
      prev_feat = {"stages." + std::to_string(si), cfg.stages[si].out_chs, net_stride};
    }
    feature_info_.push_back(prev_feat);
    feature_sources_.push_back({static_cast<int64_t>(cfg.stages.size()) - 1, 0});

    // A stage feature follows that stage; the stem's are taken inside the stem.
    const auto last = layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name);
    const auto num_stages = feature_sources_[static_cast<size_t>(last)].first + 1;
    stages_ = register_module("stages", nn::Sequential());
    for (int64_t si = 0; si < num_stages; ++si) {
      const auto u = static_cast<size_t>(si);
      stages_->push_back(Stage(prev, cfg.stages[u], plans[u].stride, plans[u].first_dilation, plans[u].dilation,
                               cfg.act, dpr[u]));
      prev = cfg.stages[u].out_chs;
    }
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(cfg.stages.back().out_chs, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    size_t next = 0;
    // Feature k is the output of stem child `second` (first == -1) or of stage `first`.
    auto take = [&](int64_t stage, int64_t child, const torch::Tensor& y) {
      while (next < indices.size()) {
        const auto& src = feature_sources_[static_cast<size_t>(indices[next])];
        if (src.first != stage || (stage < 0 && src.second != child)) break;
        out.push_back(y);
        ++next;
      }
    };
    auto y = x;
    int64_t child = 0;
    for (const auto& m : stem_->children()) {
      y = m->as<layers::ConvNormAct>() ? m->as<layers::ConvNormAct>()->forward(y)
                                       : m->as<nn::MaxPool2d>()->forward(y);
      take(-1, child++, y);
      if (next == indices.size()) return out;
    }
    for (size_t si = 0; si < stages_->size(); ++si) {
      y = stages_[si]->as<Stage>()->forward(y);
      take(static_cast<int64_t>(si), 0, y);
      if (next == indices.size()) return out;
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(stages_->forward(stem_->forward(x)), fc_);
  }

  // timm selects every feature (including the stride-1 stem) only for the darknet / cspdarknet names.
  std::vector<int64_t> default_out_indices() const override {
    const auto& n = model_name();
    if (n.rfind("darknet", 0) == 0 || n.rfind("cspdarknet", 0) == 0) return BackboneImpl::default_out_indices();
    return {0, 1, 2, 3, 4};
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.conv1.conv"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  // Per feature: (-1, stem child index) or (stage index, 0).
  std::vector<std::pair<int64_t, int64_t>> feature_sources_;
  nn::Linear fc_{nullptr};
};

std::vector<StageCfg> stages(const std::vector<int64_t>& depth, const std::vector<int64_t>& out_chs,
                             const StageCfg& base) {
  std::vector<StageCfg> s;
  for (size_t i = 0; i < depth.size(); ++i) {
    auto c = base;
    c.depth = depth[i];
    c.out_chs = out_chs[i];
    s.push_back(c);
  }
  return s;
}

StemCfg stem(std::vector<int64_t> out_chs, int64_t kernel, int64_t stride, bool pool) {
  StemCfg s;
  s.out_chs = std::move(out_chs);
  s.kernel_size = kernel;
  s.stride = stride;
  s.max_pool = pool;
  return s;
}

// The CSPResNet(X)t layout: a stride-1 first stage and cross_linear expansion.
CspCfg cspresnet(StemCfg st, std::vector<int64_t> out_chs, double expand, double bottle, double block,
                 int64_t groups = 1) {
  StageCfg b;
  b.expand_ratio = expand;
  b.bottle_ratio = bottle;
  b.block_ratio = block;
  b.groups = groups;
  b.cross_linear = true;
  CspCfg c{std::move(st), stages({3, 3, 5, 2}, out_chs, b), "leaky_relu"};
  c.stages[0].stride = 1;
  return c;
}

CspCfg darknet(std::vector<int64_t> depth, bool se = false, bool avg_down = false) {
  StageCfg b;
  b.bottle_ratio = 0.5;
  b.stage_type = StageType::kDark;
  b.block_type = BlockType::kDark;
  b.se = se;
  b.avg_down = avg_down;
  return {stem({32}, 3, 1, false), stages(depth, {64, 128, 256, 512, 1024}, b), "leaky_relu"};
}

CspCfg cs3(double width = 1.0, double depth = 1.0, bool focus = false, bool se = false, double se_rd = 1.0 / 16,
           double bottle = 1.0, BlockType block = BlockType::kDark) {
  auto w = [width](double c) { return layers::make_divisible(c * width); };
  StemCfg st;
  if (focus) {
    st = stem({w(64)}, 6, 2, false);
    st.padding = 2;
  } else {
    st = stem({w(32), w(64)}, 3, 2, false);
  }
  StageCfg b;
  b.bottle_ratio = bottle;
  b.block_ratio = 0.5;
  b.se = se;
  b.se_rd_ratio = se_rd;
  b.stage_type = StageType::kCs3;
  b.block_type = block;
  std::vector<int64_t> depths;
  for (double d : {3.0, 6.0, 9.0, 3.0}) depths.push_back(static_cast<int64_t>(d * depth));
  return {st, stages(depths, {w(128), w(256), w(512), w(1024)}, b), "silu"};
}

}  // namespace

void register_family() {
  CspCfg csp_darknet53;
  {
    StageCfg b;
    b.down_growth = true;
    b.block_type = BlockType::kDark;
    csp_darknet53 = {stem({32}, 3, 1, false), stages({1, 2, 8, 8, 4}, {64, 128, 256, 512, 1024}, b), "leaky_relu"};
    for (size_t i = 0; i < csp_darknet53.stages.size(); ++i) {
      auto& s = csp_darknet53.stages[i];
      s.expand_ratio = i == 0 ? 2.0 : 1.0;
      s.bottle_ratio = i == 0 ? 0.5 : 1.0;
      s.block_ratio = i == 0 ? 1.0 : 0.5;
    }
  }
  CspCfg xdw;
  {
    StageCfg b;
    b.bottle_ratio = 0.5;
    b.block_ratio = 0.5;
    b.se = true;
    xdw = {stem({32, 64}, 3, 2, false), stages({3, 6, 12, 4}, {256, 512, 1024, 2048}, b), "silu"};
    xdw.stages[2].groups = 256;
    xdw.stages[3].groups = 512;
  }
  const std::vector<int64_t> w1{128, 256, 512, 1024}, w2{256, 512, 1024, 2048};
  const std::vector<std::pair<std::string, CspCfg>> models = {
      {"cspresnet50", cspresnet(stem({64}, 7, 4, true), w1, 2.0, 0.5, 1.0)},
      {"cspresnet50d", cspresnet(stem({32, 32, 64}, 3, 4, true), w1, 2.0, 0.5, 1.0)},
      {"cspresnet50w", cspresnet(stem({32, 32, 64}, 3, 4, true), w2, 1.0, 0.25, 0.5)},
      {"cspresnext50", cspresnet(stem({64}, 7, 4, true), w2, 1.0, 1.0, 0.5, 32)},
      {"cspdarknet53", csp_darknet53},
      {"darknet17", darknet({1, 1, 1, 1, 1})},
      {"darknet21", darknet({1, 1, 1, 2, 2})},
      {"sedarknet21", darknet({1, 1, 1, 2, 2}, true)},
      {"darknet53", darknet({1, 2, 8, 8, 4})},
      {"darknetaa53", darknet({1, 2, 8, 8, 4}, false, true)},
      {"cs3darknet_s", cs3(0.5, 0.5)},
      {"cs3darknet_m", cs3(0.75, 0.67)},
      {"cs3darknet_l", cs3()},
      {"cs3darknet_x", cs3(1.25, 1.33)},
      {"cs3darknet_focus_s", cs3(0.5, 0.5, true)},
      {"cs3darknet_focus_m", cs3(0.75, 0.67, true)},
      {"cs3darknet_focus_l", cs3(1.0, 1.0, true)},
      {"cs3darknet_focus_x", cs3(1.25, 1.33, true)},
      {"cs3sedarknet_l", cs3(1.0, 1.0, false, true, 0.25)},
      {"cs3sedarknet_x", cs3(1.25, 1.33, false, true)},
      {"cs3sedarknet_xdw", xdw},
      {"cs3edgenet_x", cs3(1.25, 1.33, false, false, 1.0 / 16, 1.5, BlockType::kEdge)},
      {"cs3se_edgenet_x", cs3(1.25, 1.33, false, true, 0.25, 1.5, BlockType::kEdge)},
  };
  register_configs<CspNetImpl>("cspnet", models, [](ModelEntry& e, const CspCfg&) {
    if (e.name == "cs3darknet_focus_s") {
      e.mean = {0.5, 0.5, 0.5};
      e.std = {0.5, 0.5, 0.5};
    }
  });
}

}  // namespace cspnet
}  // namespace smp::timm
