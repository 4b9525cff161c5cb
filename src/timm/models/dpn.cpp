// timm's Dual Path Networks (DPN): blocks with a residual path and a densely concatenated path.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"

namespace smp::timm {

namespace dpn {
namespace {

namespace nn = torch::nn;

constexpr double kEps = 1e-3;  // every DPN norm uses the MXNet epsilon

nn::Conv2d conv2d(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).stride(stride).padding(((stride - 1) + (k - 1)) / 2).groups(groups).bias(false));
}

// Pre-activation: BatchNorm + ReLU ("bn"), then the convolution ("conv").
class BnActConvImpl : public nn::Module {
 public:
  BnActConvImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups = 1) {
    bn = register_module("bn", layers::BatchNormAct2d(in, "relu", kEps));
    conv = register_module("conv", conv2d(in, out, k, stride, groups));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv(bn(x)); }

 private:
  layers::BatchNormAct2d bn{nullptr};
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(BnActConv);

// The two paths a block passes on: (residual, dense); a plain tensor has no dense part yet.
using Paths = std::pair<torch::Tensor, torch::Tensor>;

torch::Tensor joined(const Paths& x) { return x.second.defined() ? torch::cat({x.first, x.second}, 1) : x.first; }

enum class BlockType { kProj, kDown, kNormal };

class DualPathBlockImpl : public nn::Module {
 public:
  DualPathBlockImpl(int64_t in, int64_t num_1x1_a, int64_t num_3x3_b, int64_t num_1x1_c, int64_t inc, int64_t groups,
                    BlockType type, bool b)
      : num_1x1_c_(num_1x1_c) {
    const int64_t key_stride = type == BlockType::kDown ? 2 : 1;
    if (type == BlockType::kDown)
      proj_ = register_module("c1x1_w_s2", BnActConv(in, num_1x1_c + 2 * inc, 1, 2));
    else if (type == BlockType::kProj)
      proj_ = register_module("c1x1_w_s1", BnActConv(in, num_1x1_c + 2 * inc, 1, 1));
    c1x1_a_ = register_module("c1x1_a", BnActConv(in, num_1x1_a, 1, 1));
    c3x3_b_ = register_module("c3x3_b", BnActConv(num_1x1_a, num_3x3_b, 3, key_stride, groups));
    if (b) {
      // "b" blocks: a norm-act on the grouped conv's output, then separate 1x1 convs for each path.
      c1x1_c_bn_ = register_module("c1x1_c", std::make_shared<nn::Module>())
                       ->register_module("bn", layers::BatchNormAct2d(num_3x3_b, "relu", kEps));
      c1x1_c1_ = register_module("c1x1_c1", conv2d(num_3x3_b, num_1x1_c, 1));
      c1x1_c2_ = register_module("c1x1_c2", conv2d(num_3x3_b, inc, 1));
    } else {
      c1x1_c_ = register_module("c1x1_c", BnActConv(num_3x3_b, num_1x1_c + inc, 1, 1));
    }
  }

  Paths forward(const Paths& x) {
    const auto x_in = joined(x);
    torch::Tensor s1, s2;
    if (proj_) {
      auto xs = proj_(x_in);
      s1 = xs.narrow(1, 0, num_1x1_c_);
      s2 = xs.narrow(1, num_1x1_c_, xs.size(1) - num_1x1_c_);
    } else {
      s1 = x.first;
      s2 = x.second;
    }
    auto y = c3x3_b_(c1x1_a_(x_in));
    torch::Tensor out1, out2;
    if (c1x1_c1_) {
      y = c1x1_c_bn_(y);
      out1 = c1x1_c1_(y);
      out2 = c1x1_c2_(y);
    } else {
      y = c1x1_c_(y);
      out1 = y.narrow(1, 0, num_1x1_c_);
      out2 = y.narrow(1, num_1x1_c_, y.size(1) - num_1x1_c_);
    }
    return {s1 + out1, torch::cat({s2, out2}, 1)};
  }

 private:
  int64_t num_1x1_c_;
  BnActConv proj_{nullptr}, c1x1_a_{nullptr}, c3x3_b_{nullptr}, c1x1_c_{nullptr};
  layers::BatchNormAct2d c1x1_c_bn_{nullptr};
  nn::Conv2d c1x1_c1_{nullptr}, c1x1_c2_{nullptr};
};
TORCH_MODULE(DualPathBlock);

struct DpnCfg {
  bool small = false;
  int64_t num_init_features = 64, k_r = 96, groups = 32;
  bool b = false;
  std::vector<int64_t> k_sec{3, 4, 20, 3}, inc_sec{16, 32, 24, 128};
  std::string act = "relu";
};

class DpnImpl : public BackboneImpl {
 public:
  DpnImpl(const std::string& name, const DpnCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto last = layers::last_feature_index(args, 5, name);
    auto features = register_module("features", std::make_shared<nn::Module>());
    // The stem is timm's ConvNormAct, but with the DPN epsilon and the model's activation.
    auto stem = features->register_module("conv1_1", std::make_shared<nn::Module>());
    stem_conv_ = stem->register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.num_init_features, c.small ? 3 : 7)
                               .stride(2)
                               .padding(c.small ? 1 : 3)
                               .bias(false)));
    stem_bn_ = stem->register_module("bn", layers::BatchNormAct2d(c.num_init_features, c.act, kEps));
    features->register_module("conv1_pool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    feature_info_.push_back({"features.conv1_1", c.num_init_features, 2});

    const int64_t bw_factor = c.small ? 1 : 4;
    int64_t in = c.num_init_features;
    for (int64_t s = 0; s < 4; ++s) {
      const auto u = static_cast<size_t>(s);
      const int64_t bw = (int64_t{64} << s) * bw_factor, inc = c.inc_sec[u];
      const int64_t r = (c.k_r * bw) / (64 * bw_factor);
      const bool build = s < last;
      std::vector<DualPathBlock> stage;
      for (int64_t i = 1; i <= c.k_sec[u]; ++i) {
        const auto type = i > 1 ? BlockType::kNormal : (s == 0 ? BlockType::kProj : BlockType::kDown);
        if (build)
          stage.push_back(features->register_module("conv" + std::to_string(s + 2) + "_" + std::to_string(i),
                                                    DualPathBlock(in, r, r, bw, inc, c.groups, type, c.b)));
        in = i == 1 ? bw + 3 * inc : in + inc;
      }
      feature_info_.push_back(
          {"features.conv" + std::to_string(s + 2) + "_" + std::to_string(c.k_sec[u]), in, int64_t{4} << s});
      if (build) stages_.push_back(std::move(stage));
    }
    if (!args.features_only()) {
      // timm meant an ELU here, but the norm's bound activation takes precedence.
      final_bn_ = features->register_module("conv5_bn_ac", std::make_shared<nn::Module>())
                      ->register_module("bn", layers::BatchNormAct2d(in, c.act, kEps));
      if (args.num_classes() > 0)
        classifier_ = register_module("classifier", nn::Conv2d(nn::Conv2dOptions(in, args.num_classes(), 1)));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_bn_(stem_conv_(x));
    if (indices.front() == 0) out.push_back(y);
    Paths p{torch::max_pool2d(y, 3, 2, 1), torch::Tensor()};
    for (size_t s = 0; out.size() < indices.size(); ++s) {
      for (auto& block : stages_[s]) p = block(p);
      if (static_cast<int64_t>(s) + 1 == indices[out.size()]) out.push_back(joined(p));
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = final_bn_(forward_intermediates(x, {4}).front()).mean({2, 3}, /*keepdim=*/true);
    // The classifier is a 1x1 convolution, so the dropout is applied here rather than by classify().
    y = layers::dropout(y, head_drop_rate(), is_training());
    return classifier_ ? classifier_(y).flatten(1) : y.flatten(1);
  }

  std::vector<std::string> flattened_children() const override { return {"features"}; }
  std::string first_conv() const override { return "features.conv1_1.conv"; }

 private:
  nn::Conv2d stem_conv_{nullptr}, classifier_{nullptr};
  layers::BatchNormAct2d stem_bn_{nullptr}, final_bn_{nullptr};
  std::vector<std::vector<DualPathBlock>> stages_;
};

DpnCfg dpn(bool small, int64_t init, int64_t k_r, int64_t groups, bool b, std::vector<int64_t> k_sec,
           std::vector<int64_t> inc_sec, std::string act = "relu") {
  DpnCfg c;
  c.small = small;
  c.num_init_features = init;
  c.k_r = k_r;
  c.groups = groups;
  c.b = b;
  c.k_sec = std::move(k_sec);
  c.inc_sec = std::move(inc_sec);
  c.act = std::move(act);
  return c;
}

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, DpnCfg>> models = {
      {"dpn48b", dpn(true, 10, 128, 32, true, {3, 4, 6, 3}, {16, 32, 32, 64}, "silu")},
      {"dpn68", dpn(true, 10, 128, 32, false, {3, 4, 12, 3}, {16, 32, 32, 64})},
      {"dpn68b", dpn(true, 10, 128, 32, true, {3, 4, 12, 3}, {16, 32, 32, 64})},
      {"dpn92", dpn(false, 64, 96, 32, false, {3, 4, 20, 3}, {16, 32, 24, 128})},
      {"dpn98", dpn(false, 96, 160, 40, false, {3, 6, 20, 3}, {16, 32, 32, 128})},
      {"dpn131", dpn(false, 128, 160, 40, false, {4, 8, 28, 3}, {16, 32, 32, 128})},
      {"dpn107", dpn(false, 128, 200, 50, false, {4, 8, 20, 3}, {20, 64, 64, 128})},
  };
  register_configs<DpnImpl>("dpn", models, [](ModelEntry& e, const DpnCfg&) {
    // MXNet preprocessing for the converted weights; the timm-trained ones use ImageNet's.
    if (e.name == "dpn48b" || e.name == "dpn68b") return;
    e.mean = {124.0 / 255, 117.0 / 255, 104.0 / 255};
    const double sd = 1.0 / (0.0167 * 255);
    e.std = {sd, sd, sd};
  });
}

}  // namespace dpn
}  // namespace smp::timm
