// The models of timm's rexnet.py: ReXNet (and the channel-rounded ReXNet-R), MobileNet-V2 style
// linear bottlenecks whose widths grow linearly with depth and whose residual covers only the input's
// channels.
#include <cmath>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace rexnet {
namespace {

namespace nn = torch::nn;

struct RexConfig {
  double width = 1.0;
  int64_t ch_div = 1;
};

// Python's round(): half to even.
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

// Squeeze-excite with a BatchNorm on the reduced width: fc1 -> bn -> ReLU -> fc2 -> sigmoid.
class SeWithNormImpl : public nn::Module {
 public:
  SeWithNormImpl(int64_t ch, int64_t rd) {
    fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(ch, rd, 1)));
    bn_ = register_module("bn", nn::BatchNorm2d(rd));
    fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(rd, ch, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto s = fc2_(torch::relu(bn_(fc1_(x.mean({2, 3}, /*keepdim=*/true)))));
    return x * torch::sigmoid(s);
  }

 private:
  nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(SeWithNorm);

class LinearBottleneckImpl : public nn::Module {
 public:
  LinearBottleneckImpl(int64_t in, int64_t out, int64_t stride, int64_t dilation, int64_t next_dilation, double exp,
                       double se, int64_t ch_div, double dpr)
      : in_(in), drop_path_(dpr) {
    shortcut_ = stride == 1 && dilation == next_dilation && in <= out;
    int64_t dw = in;
    if (exp != 1.0) {
      dw = layers::make_divisible(static_cast<double>(py_round(static_cast<double>(in) * exp)), ch_div);
      conv_exp_ = register_module("conv_exp", layers::ConvNormAct(layers::ConvNormActOptions(in, dw, 1).act("silu")));
    }
    conv_dw_ = register_module("conv_dw", layers::ConvNormAct(layers::ConvNormActOptions(dw, dw, 3)
                                                                  .stride(stride)
                                                                  .dilation(dilation)
                                                                  .groups(dw)
                                                                  .act("")));
    if (se > 0)
      se_ = register_module(
          "se", SeWithNorm(dw, layers::make_divisible(static_cast<double>(static_cast<int64_t>(dw * se)), ch_div)));
    conv_pwl_ = register_module("conv_pwl", layers::ConvNormAct(layers::ConvNormActOptions(dw, out, 1).act("")));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv_exp_ ? conv_exp_(x) : x;
    y = conv_dw_(y);
    if (se_) y = se_(y);
    y = conv_pwl_(torch::relu6(y));
    if (!shortcut_) return y;
    y = layers::drop_path(y, drop_path_, is_training());
    // The residual adds to the first in_ channels; the rest pass through.
    if (y.size(1) == in_) return y + x;
    return torch::cat({y.narrow(1, 0, in_) + x, y.narrow(1, in_, y.size(1) - in_)}, 1);
  }

 private:
  int64_t in_;
  double drop_path_;
  bool shortcut_;
  layers::ConvNormAct conv_exp_{nullptr}, conv_dw_{nullptr}, conv_pwl_{nullptr};
  SeWithNorm se_{nullptr};
};
TORCH_MODULE(LinearBottleneck);

class RexNetImpl : public BackboneImpl {
 public:
  RexNetImpl(const std::string& name, const RexConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    const int64_t os = args.output_stride();
    if (os != 32 && os != 16 && os != 8)
      throw std::invalid_argument(name + " supports output_stride 8, 16 or 32 (got " + std::to_string(os) + ")");
    const double w = c.width;
    const int64_t div = c.ch_div;
    const double stem_base = w < 1.0 ? 32.0 / w : 32.0;
    const int64_t stem = layers::make_divisible(static_cast<double>(py_round(stem_base * w)), div);
    stem_ = register_module("stem", layers::ConvNormAct(layers::ConvNormActOptions(args.in_chans(), stem, 3)
                                                            .stride(2)
                                                            .act("silu")));

    // Block widths rise linearly from 16 by 180 over the blocks; strides per stage as in the paper.
    const std::vector<int64_t> depths = {1, 2, 2, 3, 3, 5}, stage_strides = {1, 2, 2, 2, 1, 2};
    struct Blk {
      int64_t chs;
      double exp;
      int64_t stride;
      double se;
    };
    std::vector<Blk> blocks;
    for (size_t s = 0; s < depths.size(); ++s)
      for (int64_t i = 0; i < depths[s]; ++i)
        blocks.push_back({0, s == 0 ? 1.0 : 6.0, i == 0 ? stage_strides[s] : 1, s < 2 ? 0.0 : 1.0 / 12});
    const auto n = static_cast<int64_t>(blocks.size());
    double base = w < 1.0 ? 16.0 / w : 16.0;
    for (auto& b : blocks) {
      b.chs = layers::make_divisible(static_cast<double>(py_round(base * w)), div);
      base += 180.0 / static_cast<double>(n);
    }

    // feature_info: the module before each strided block, then the last bottleneck.
    std::vector<int64_t> feat_chs = {stem};
    int64_t curr_stride = 2, dilation = 1, prev = stem;
    std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> plan;  // stride, dilation, next dilation, in
    for (int64_t i = 0; i < n; ++i) {
      auto& b = blocks[static_cast<size_t>(i)];
      int64_t stride = b.stride, next = dilation;
      if (stride > 1) {
        feature_info_.push_back({i == 0 ? "stem" : "features." + std::to_string(i - 1), feat_chs.back(), curr_stride});
        feature_pos_.push_back(i - 1);
        if (curr_stride >= os) {
          next = dilation * stride;
          stride = 1;
        }
      }
      plan.emplace_back(stride, dilation, next, prev);
      curr_stride *= stride;
      dilation = next;
      prev = b.chs;
      feat_chs.push_back(b.chs);
    }
    feature_info_.push_back({"features." + std::to_string(n - 1), feat_chs.back(), curr_stride});
    feature_pos_.push_back(n - 1);

    const int64_t last = args.features_only()
                             ? feature_pos_[static_cast<size_t>(
                                   layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name))]
                             : n - 1;
    features_ = register_module("features", nn::Sequential());
    for (int64_t i = 0; i <= last; ++i) {
      const auto& b = blocks[static_cast<size_t>(i)];
      const auto [stride, dil, next, in] = plan[static_cast<size_t>(i)];
      const double dpr = args.drop_path_rate() * static_cast<double>(i) / static_cast<double>(n - 1);
      features_->push_back(LinearBottleneck(in, b.chs, stride, dil, next, b.exp, b.se, div, dpr));
    }
    if (args.features_only()) return;
    const int64_t pen = layers::make_divisible(1280 * w, div);
    features_->push_back(layers::ConvNormAct(layers::ConvNormActOptions(prev, pen, 1).act("silu")));
    if (args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(pen, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_(x);
    size_t next = 0;
    auto take = [&](int64_t pos) {
      if (next < indices.size() && feature_pos_[static_cast<size_t>(indices[next])] == pos) {
        out.push_back(y);
        ++next;
      }
    };
    take(-1);
    for (int64_t i = 0; next < indices.size(); ++i) {
      y = features_[static_cast<size_t>(i)]->as<LinearBottleneckImpl>()->forward(y);
      take(i);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(features_->forward(stem_(x)), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"features"}; }
  std::string first_conv() const override { return "stem.conv"; }

 private:
  std::vector<int64_t> feature_pos_;  // per feature: index of the producing block (-1 = stem)
  layers::ConvNormAct stem_{nullptr};
  nn::Sequential features_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, RexConfig>> models = {
      {"rexnet_100", {1.0, 1}},  {"rexnet_130", {1.3, 1}},  {"rexnet_150", {1.5, 1}},  {"rexnet_200", {2.0, 1}},
      {"rexnet_300", {3.0, 1}},  {"rexnetr_100", {1.0, 8}}, {"rexnetr_130", {1.3, 8}}, {"rexnetr_150", {1.5, 8}},
      {"rexnetr_200", {2.0, 8}}, {"rexnetr_300", {3.0, 16}},
  };
  register_configs<RexNetImpl>("rexnet", models);
}

}  // namespace rexnet
}  // namespace smp::timm
