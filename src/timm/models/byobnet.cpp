// timm's "bring your own blocks" network (byobnet.py), for now two of its model groups:
// - MobileOne: stages of re-parameterisable MobileOne blocks (layers/mobileone.h) that
//   `reparameterize()` folds into single convolutions with the same outputs;
// - RegNetZ (regnetz_b16/c16/d8/d32/e8): stages of bottleneck blocks (1x1 -> grouped kxk -> SE -> 1x1,
//   linear output, residual only where the shape is kept) and a final 1x1 ConvNormAct.
#include <smp/modules.h>
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace byobnet {
namespace {

struct MobileOneConfig {
  std::vector<double> width_factors;  // per stage, on (64, 128, 256, 512)
  int64_t stem_chs = 64;
  int64_t num_conv_branches = 1;
  std::vector<int64_t> se_blocks = {0, 0, 0, 0};  // the last n blocks of each stage get squeeze-excite
};
const std::vector<int64_t> kDepths = {2, 8, 10, 1};
const std::vector<int64_t> kWidths = {64, 128, 256, 512};

// A block as byobnet builds them: ReLU, squeeze-excite (when asked) named "attn".
layers::MobileOneBlock mobileone_block(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                       int64_t branches, bool se, double drop_path_rate,
                                       bool dilation_changes = false) {
  return layers::MobileOneBlock(layers::MobileOneBlockOptions(in, out, kernel)
                                    .stride(stride)
                                    .groups(groups)
                                    .num_conv_branches(branches)
                                    .dilation_changes(dilation_changes)
                                    .drop_path_rate(drop_path_rate),
                                se ? layers::create_attn("se", out) : nn::AnyModule());
}

class MobileOneImpl : public BackboneImpl {
 public:
  MobileOneImpl(const std::string& name, const MobileOneConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args) {
    // timm's stem has no stochastic depth.
    stem = register_module("stem", mobileone_block(args.in_chans(), c.stem_chs, 3, 2, 1, 1, false, 0.0));
    feature_info_.push_back({"stem", c.stem_chs, 2});
    // Past output_stride a stage keeps stride 1 (timm's create_byob_stages; timm's MobileOne blocks do
    // not dilate their convolutions, so neither do these).
    std::vector<int64_t> outs, strides;
    std::vector<bool> first_dilation_differs;
    int64_t net_stride = 2, dilation = 1;
    for (size_t s = 0; s < 4; ++s) {
      outs.push_back(layers::make_divisible(static_cast<double>(kWidths[s]) * c.width_factors[s]));
      int64_t stride = 2;
      if (net_stride >= args.output_stride()) {
        dilation *= stride;
        stride = 1;
      }
      net_stride *= stride;
      strides.push_back(stride);
      first_dilation_differs.push_back((dilation <= 2 ? 1 : 2) != dilation);
      // stages.0-2 are features; the last stage's output is the "final_conv" feature (an identity).
      feature_info_.push_back({s < 3 ? "stages." + std::to_string(s) : "final_conv", outs[s], net_stride});
    }
    const int64_t last = layers::last_feature_index(args, 5, name);
    stages = register_module("stages", nn::Sequential());
    int64_t prev = c.stem_chs;
    // Each block is a depthwise kxk block then a pointwise block; the first takes the stage's stride.
    // timm's stochastic depth schedule counts the two separately.
    std::vector<int64_t> blocks_per_stage;
    for (const int64_t depth : kDepths) blocks_per_stage.push_back(2 * depth);
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), blocks_per_stage);
    auto dw = std::min<int64_t>(64, static_cast<int64_t>(64 * c.width_factors[0]));
    for (size_t s = 0; static_cast<int64_t>(s) < last && s < 4; ++s) {
      Block stage;
      for (int64_t b = 0; b < kDepths[s]; ++b) {
        const bool se = b >= kDepths[s] - c.se_blocks[s];
        const auto depthwise = static_cast<size_t>(2 * b);
        stage->push_back(mobileone_block(prev, dw, 3, b == 0 ? strides[s] : 1, dw, c.num_conv_branches, se,
                                         drop_path_rates[s][depthwise], b == 0 && first_dilation_differs[s]));
        stage->push_back(
            mobileone_block(dw, outs[s], 1, 1, 1, c.num_conv_branches, se, drop_path_rates[s][depthwise + 1]));
        prev = dw = outs[s];
      }
      stages->push_back(stage);
    }
    if (last == 4) register_module("final_conv", nn::Identity());
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages->size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    if (indices.front() == 0) out.push_back(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages[static_cast<size_t>(i - 1)]->as<Block>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(stages->forward(stem(x)), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv_kxk.0.conv"; }

 private:
  layers::MobileOneBlock stem{nullptr};
  nn::Sequential stages{nullptr};
  nn::Linear fc_{nullptr};
};

// ---- RegNetZ ----

struct RegNetZStage {
  int64_t depth, channels, stride, group_size;
  double bottle_ratio;
};
struct RegNetZConfig {
  std::vector<RegNetZStage> stages;
  int64_t stem_chs;
  bool tiered_stem;  // three 3x3 convs (3/8, 1/2, 1 of stem_chs; stride 2, 1, 2) instead of one
  int64_t num_features;
};

layers::ConvNormAct conv_norm_act(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t dilation = 1,
                                  int64_t groups = 1, const std::string& act = "silu") {
  return layers::ConvNormAct(
      layers::ConvNormActOptions(in, out, kernel).stride(stride).dilation(dilation).groups(groups).act(act));
}

// byobnet's BottleneckBlock with bottle_in=True, linear_out=True and downsample='': the bottleneck
// width follows the input, there is no activation after the sum, and a block that changes the shape
// has no shortcut at all (timm applies its stochastic depth all the same).
class RegNetZBlockImpl : public nn::Module {
 public:
  RegNetZBlockImpl(int64_t in, int64_t out, int64_t stride, int64_t first_dilation, int64_t dilation,
                   int64_t group_size, double bottle_ratio, double drop_path_rate)
      : residual_(in == out && stride == 1 && first_dilation == dilation), drop_path_rate_(drop_path_rate) {
    const auto mid = layers::make_divisible(static_cast<double>(in) * bottle_ratio);
    conv1_1x1 = register_module("conv1_1x1", conv_norm_act(in, mid, 1));
    conv2_kxk = register_module("conv2_kxk", conv_norm_act(mid, mid, 3, stride, first_dilation, mid / group_size));
    attn = register_module("attn", layers::SEModule(mid, 0.25));
    conv3_1x1 = register_module("conv3_1x1", conv_norm_act(mid, out, 1, 1, 1, 1, ""));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = layers::drop_path(conv3_1x1(attn(conv2_kxk(conv1_1x1(x)))), drop_path_rate_, is_training());
    return residual_ ? y.add_(x) : y;  // y is a fresh output (the norm's or drop_path's)
  }

 private:
  bool residual_;
  double drop_path_rate_;
  layers::ConvNormAct conv1_1x1{nullptr}, conv2_kxk{nullptr}, conv3_1x1{nullptr};
  layers::SEModule attn{nullptr};
};
TORCH_MODULE(RegNetZBlock);

class RegNetZImpl : public BackboneImpl {
 public:
  RegNetZImpl(const std::string& name, const RegNetZConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (c.tiered_stem) {
      const std::vector<int64_t> chs = {3 * c.stem_chs / 8, c.stem_chs / 2, c.stem_chs};
      stem_ = register_module("stem", nn::Sequential());
      stem_->push_back("conv1", conv_norm_act(args.in_chans(), chs[0], 3, 2));
      stem_->push_back("conv2", conv_norm_act(chs[0], chs[1], 3));
      stem_->push_back("conv3", conv_norm_act(chs[1], chs[2], 3, 2));
      feature_info_.push_back({"stem.conv2", chs[1], 2});
      first_conv_ = "stem.conv1.conv";
    } else {
      stem_ = nn::Sequential(conv_norm_act(args.in_chans(), c.stem_chs, 3, 2));
      register_module("stem", stem_[0]);
      feature_info_.push_back({"stem", c.stem_chs, 2});
      first_conv_ = "stem.conv";
    }
    // Strides past output_stride become dilation, as timm's create_byob_stages does.
    int64_t net_stride = c.tiered_stem ? 4 : 2, dilation = 1, prev = c.stem_chs;
    const int64_t last = layers::last_feature_index(args, 5, name);
    std::vector<int64_t> depths;
    for (const auto& st : c.stages) depths.push_back(st.depth);
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), depths);
    stages_ = register_module("stages", nn::Sequential());
    for (size_t s = 0; s < c.stages.size(); ++s) {
      const auto& st = c.stages[s];
      int64_t stride = st.stride;
      if (net_stride >= args.output_stride() && stride > 1) {
        dilation *= stride;
        stride = 1;
      }
      net_stride *= stride;
      int64_t first_dilation = dilation <= 2 ? 1 : 2;
      feature_info_.push_back({s + 1 < c.stages.size() ? "stages." + std::to_string(s) : "final_conv",
                               s + 1 < c.stages.size() ? st.channels : c.num_features, net_stride});
      if (static_cast<int64_t>(s) >= last) continue;  // not needed by the selected features
      Block stage;
      for (int64_t b = 0; b < st.depth; ++b) {
        stage->push_back(RegNetZBlock(prev, st.channels, b == 0 ? stride : 1, first_dilation, dilation, st.group_size,
                                      st.bottle_ratio, drop_path_rates[s][static_cast<size_t>(b)]));
        first_dilation = dilation;
        prev = st.channels;
      }
      stages_->push_back(stage);
    }
    if (last == 4) final_conv_ = register_module("final_conv", conv_norm_act(prev, c.num_features, 1));
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(c.num_features, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    // Feature 0 is the stem's output, or for the tiered stem its second conv.
    auto y = x;
    for (size_t i = 0; i < stem_->size(); ++i) {
      y = stem_[i]->as<layers::ConvNormAct>()->forward(y);
      if (i + 1 == std::min<size_t>(2, stem_->size()) && indices.front() == 0) out.push_back(y);
    }
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->as<Block>()->forward(y);
      if (i == 4) y = final_conv_(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(final_conv_(stages_->forward(stem_->forward(x))), fc_);
  }

  std::vector<std::string> flattened_children() const override {
    if (stem_->size() > 1) return {"stem", "stages"};
    return {"stages"};
  }
  std::string first_conv() const override { return first_conv_; }

 private:
  std::string first_conv_;
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  layers::ConvNormAct final_conv_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, MobileOneConfig>> models = {
      {"mobileone_s0", {{0.75, 1.0, 1.0, 2.0}, 48, 4}},
      {"mobileone_s1", {{1.5, 1.5, 2.0, 2.5}, 64}},
      {"mobileone_s2", {{1.5, 2.0, 2.5, 4.0}, 64}},
      {"mobileone_s3", {{2.0, 2.5, 3.0, 4.0}, 64}},
      {"mobileone_s4", {{3.0, 3.5, 3.5, 4.0}, 64, 1, {0, 0, 5, 1}}},
  };
  register_configs<MobileOneImpl>("byobnet", models);

  // Stages (depth, channels, stride, group size, bottleneck ratio).
  auto small = [](double br) {
    return std::vector<RegNetZStage>{{2, 48, 2, 16, br}, {6, 96, 2, 16, br}, {12, 192, 2, 16, br}, {2, 288, 2, 16, br}};
  };
  auto large = [](int64_t gs, std::vector<int64_t> depths, std::vector<int64_t> chs) {
    std::vector<RegNetZStage> stages;
    for (size_t i = 0; i < 4; ++i) stages.push_back({depths[i], chs[i], i == 0 ? 1 : 2, gs, 4.0});
    return stages;
  };
  const std::vector<std::pair<std::string, RegNetZConfig>> regnetz = {
      {"regnetz_b16", {small(3.0), 32, false, 1536}},
      {"regnetz_c16", {small(4.0), 32, false, 1536}},
      {"regnetz_d32", {large(32, {3, 6, 12, 3}, {64, 128, 256, 384}), 64, true, 1792}},
      {"regnetz_d8", {large(8, {3, 6, 12, 3}, {64, 128, 256, 384}), 64, true, 1792}},
      {"regnetz_e8", {large(8, {3, 8, 16, 3}, {96, 192, 384, 512}), 64, true, 2048}},
  };
  register_configs<RegNetZImpl>("byobnet", regnetz,
                                [](ModelEntry& entry, const RegNetZConfig&) { entry.mean = entry.std = {0.5, 0.5, 0.5}; });
}

}  // namespace byobnet
}  // namespace smp::timm
