// The models of timm's hgnet.py: PP-HGNet (V1: ESE aggregation) and PP-HGNetV2 (V2: two-conv
// aggregation, light depthwise blocks and optional learnable affine after activations).
#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace hgnet {
namespace {

namespace nn = torch::nn;

// A learnable scalar scale and bias after an activation ("lab").
class LearnableAffineImpl : public nn::Module {
 public:
  LearnableAffineImpl() {
    scale = register_parameter("scale", torch::ones({1}));
    bias = register_parameter("bias", torch::zeros({1}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::addcmul(bias, x, scale); }
  torch::Tensor scale, bias;
};
TORCH_MODULE(LearnableAffine);

// Conv ("conv", no bias, symmetric padding) -> BatchNorm ("bn") -> optional ReLU -> optional "lab".
class ConvBnActImpl : public nn::Module {
 public:
  ConvBnActImpl(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1, bool act = true,
                bool lab = false)
      : act_(act) {
    const int64_t pad = ((stride - 1) + (k - 1)) / 2;
    conv_ = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).groups(groups).bias(false)));
    bn_ = register_module("bn", nn::BatchNorm2d(out));
    if (act && lab) lab_ = register_module("lab", LearnableAffine());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn_(conv_(x));
    if (act_) y = torch::relu(y);
    return lab_ ? lab_(y) : y;
  }

 private:
  bool act_;
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
  LearnableAffine lab_{nullptr};
};
TORCH_MODULE(ConvBnAct);

// 1x1 conv-BN, then depthwise conv-BN-ReLU.
class LightConvBnActImpl : public nn::Module {
 public:
  LightConvBnActImpl(int64_t in, int64_t out, int64_t k, bool lab) {
    conv1_ = register_module("conv1", ConvBnAct(in, out, 1, 1, 1, false, lab));
    conv2_ = register_module("conv2", ConvBnAct(out, out, k, 1, out, true, lab));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv2_(conv1_(x)); }

 private:
  ConvBnAct conv1_{nullptr}, conv2_{nullptr};
};
TORCH_MODULE(LightConvBnAct);

// Effective squeeze-excite: one biased 1x1 conv on the spatial mean, sigmoid gate.
class EseImpl : public nn::Module {
 public:
  explicit EseImpl(int64_t ch) { conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(ch, ch, 1))); }
  torch::Tensor forward(const torch::Tensor& x) { return x * torch::sigmoid(conv_(x.mean({2, 3}, true))); }

 private:
  nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Ese);

struct StageCfg {
  int64_t in, mid, out, blocks;
  bool downsample, light;
  int64_t kernel, layers;
};

struct HgConfig {
  bool v2 = false;
  std::vector<int64_t> stem;
  std::vector<StageCfg> stages;
  bool lab = false;
};

// Concatenates the input and every layer's output, aggregates them back to `out` channels.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t in, int64_t mid, int64_t out, const StageCfg& s, bool residual, bool v2, bool lab, double dpr)
      : residual_(residual), drop_path_(dpr) {
    layers_ = register_module("layers", nn::ModuleList());
    for (int64_t i = 0; i < s.layers; ++i) {
      const int64_t c = i == 0 ? in : mid;
      if (s.light)
        layers_->push_back(LightConvBnAct(c, mid, s.kernel, lab));
      else
        layers_->push_back(ConvBnAct(c, mid, s.kernel, 1, 1, true, lab));
    }
    const int64_t total = in + s.layers * mid;
    if (v2)
      aggregation_ = register_module(
          "aggregation", nn::Sequential(ConvBnAct(total, out / 2, 1, 1, 1, true, lab), ConvBnAct(out / 2, out, 1, 1, 1, true, lab)));
    else
      aggregation_ = register_module("aggregation", nn::Sequential(ConvBnAct(total, out, 1, 1, 1, true, lab), Ese(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> outs = {x};
    auto y = x;
    for (const auto& l : *layers_) {
      if (auto* light = l->as<LightConvBnActImpl>())
        y = light->forward(y);
      else
        y = l->as<ConvBnActImpl>()->forward(y);
      outs.push_back(y);
    }
    y = aggregation_->forward(torch::cat(outs, 1));
    if (residual_) y = layers::drop_path(y, drop_path_, is_training()) + x;
    return y;
  }

 private:
  bool residual_;
  double drop_path_;
  nn::ModuleList layers_{nullptr};
  nn::Sequential aggregation_{nullptr};
};
TORCH_MODULE(Block);

class StageImpl : public nn::Module {
 public:
  StageImpl(const StageCfg& s, bool v2, bool lab, const std::vector<double>& dpr) {
    if (s.downsample) downsample_ = register_module("downsample", ConvBnAct(s.in, s.in, 3, 2, s.in, false, lab));
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < s.blocks; ++i)
      blocks_->push_back(Block(i == 0 ? s.in : s.out, s.mid, s.out, s, i > 0, v2, lab, dpr[static_cast<size_t>(i)]));
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks_->forward(downsample_ ? downsample_(x) : x); }

 private:
  ConvBnAct downsample_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Stage);

// V1 stem: three 3x3 conv-BN-ReLU (the first strided), 3x3/2 max pool.
class StemV1Impl : public nn::Module {
 public:
  explicit StemV1Impl(const std::vector<int64_t>& chs) {
    stem_ = register_module("stem", nn::Sequential());
    for (size_t i = 0; i + 1 < chs.size(); ++i) stem_->push_back(ConvBnAct(chs[i], chs[i + 1], 3, i == 0 ? 2 : 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::max_pool2d(stem_->forward(x), {3, 3}, {2, 2}, {1, 1});
  }

 private:
  nn::Sequential stem_{nullptr};
};
TORCH_MODULE(StemV1);

// V2 stem: a strided conv, then a 2x2 conv pair beside a 2x2 max pool (both on bottom/right padded
// input), concatenated, a strided 3x3 conv and a 1x1 conv.
class StemV2Impl : public nn::Module {
 public:
  StemV2Impl(int64_t in, int64_t mid, int64_t out, bool lab) {
    stem1_ = register_module("stem1", ConvBnAct(in, mid, 3, 2, 1, true, lab));
    stem2a_ = register_module("stem2a", ConvBnAct(mid, mid / 2, 2, 1, 1, true, lab));
    stem2b_ = register_module("stem2b", ConvBnAct(mid / 2, mid, 2, 1, 1, true, lab));
    stem3_ = register_module("stem3", ConvBnAct(mid * 2, mid, 3, 2, 1, true, lab));
    stem4_ = register_module("stem4", ConvBnAct(mid, out, 1, 1, 1, true, lab));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::constant_pad_nd(stem1_(x), {0, 1, 0, 1});
    auto y2 = stem2b_(torch::constant_pad_nd(stem2a_(y), {0, 1, 0, 1}));
    auto y1 = torch::max_pool2d(y, {2, 2}, {1, 1}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
    return stem4_(stem3_(torch::cat({y1, y2}, 1)));
  }

 private:
  ConvBnAct stem1_{nullptr}, stem2a_{nullptr}, stem2b_{nullptr}, stem3_{nullptr}, stem4_{nullptr};
};
TORCH_MODULE(StemV2);

class HgNetImpl : public BackboneImpl {
 public:
  HgNetImpl(const std::string& name, const HgConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    stem_first_conv_ = c.v2 ? "stem.stem1.conv" : "stem.stem.0.conv";
    if (c.v2) {
      stem_ = register_module("stem", StemV2(args.in_chans(), c.stem[0], c.stem[1], c.lab));
    } else {
      std::vector<int64_t> chs = {args.in_chans()};
      chs.insert(chs.end(), c.stem.begin(), c.stem.end());
      stem_ = register_module("stem", StemV1(chs));
    }
    std::vector<int64_t> depths;
    int64_t stride = 4;
    for (size_t i = 0; i < c.stages.size(); ++i) {
      depths.push_back(c.stages[i].blocks);
      if (c.stages[i].downsample) stride *= 2;
      feature_info_.push_back({"stages." + std::to_string(i), c.stages[i].out, stride});
    }
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), depths);
    const int64_t last = layers::last_feature_index(args, static_cast<int64_t>(c.stages.size()), name);
    stages_ = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i <= last; ++i)
      stages_->push_back(Stage(c.stages[static_cast<size_t>(i)], c.v2, c.lab, dpr[static_cast<size_t>(i)]));
    if (args.features_only()) return;
    auto head = register_module("head", std::make_shared<nn::Module>());
    last_conv_ = head->register_module("last_conv", nn::Sequential());
    last_conv_->push_back(nn::Conv2d(nn::Conv2dOptions(c.stages.back().out, 2048, 1).bias(false)));
    last_conv_->push_back(nn::Functional(torch::relu));
    if (c.lab) last_conv_->push_back(LearnableAffine());
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(2048, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem_.forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<StageImpl>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(stem_.forward(x));
    y = last_conv_->forward(y.mean({2, 3}, /*keepdim=*/true)).flatten(1);
    return classify(y, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return stem_first_conv_; }

 private:
  nn::AnyModule stem_;
  nn::Sequential stages_{nullptr}, last_conv_{nullptr};
  nn::Linear fc_{nullptr};
  std::string stem_first_conv_;
};

}  // namespace

void register_family() {
  auto v1 = [](std::vector<int64_t> stem, std::vector<StageCfg> st) { return HgConfig{false, stem, st, false}; };
  auto v2 = [](std::vector<int64_t> stem, std::vector<StageCfg> st, bool lab) { return HgConfig{true, stem, st, lab}; };
  const std::vector<std::pair<std::string, HgConfig>> models = {
      {"hgnet_tiny", v1({48, 48, 96},
                        {{96, 96, 224, 1, false, false, 3, 5},
                         {224, 128, 448, 1, true, false, 3, 5},
                         {448, 160, 512, 2, true, false, 3, 5},
                         {512, 192, 768, 1, true, false, 3, 5}})},
      {"hgnet_small", v1({64, 64, 128},
                         {{128, 128, 256, 1, false, false, 3, 6},
                          {256, 160, 512, 1, true, false, 3, 6},
                          {512, 192, 768, 2, true, false, 3, 6},
                          {768, 224, 1024, 1, true, false, 3, 6}})},
      {"hgnet_base", v1({96, 96, 160},
                        {{160, 192, 320, 1, false, false, 3, 7},
                         {320, 224, 640, 2, true, false, 3, 7},
                         {640, 256, 960, 3, true, false, 3, 7},
                         {960, 288, 1280, 2, true, false, 3, 7}})},
      {"hgnetv2_b0", v2({16, 16},
                        {{16, 16, 64, 1, false, false, 3, 3},
                         {64, 32, 256, 1, true, false, 3, 3},
                         {256, 64, 512, 2, true, true, 5, 3},
                         {512, 128, 1024, 1, true, true, 5, 3}},
                        true)},
      {"hgnetv2_b1", v2({24, 32},
                        {{32, 32, 64, 1, false, false, 3, 3},
                         {64, 48, 256, 1, true, false, 3, 3},
                         {256, 96, 512, 2, true, true, 5, 3},
                         {512, 192, 1024, 1, true, true, 5, 3}},
                        true)},
      {"hgnetv2_b2", v2({24, 32},
                        {{32, 32, 96, 1, false, false, 3, 4},
                         {96, 64, 384, 1, true, false, 3, 4},
                         {384, 128, 768, 3, true, true, 5, 4},
                         {768, 256, 1536, 1, true, true, 5, 4}},
                        true)},
      {"hgnetv2_b3", v2({24, 32},
                        {{32, 32, 128, 1, false, false, 3, 5},
                         {128, 64, 512, 1, true, false, 3, 5},
                         {512, 128, 1024, 3, true, true, 5, 5},
                         {1024, 256, 2048, 1, true, true, 5, 5}},
                        true)},
      {"hgnetv2_b4", v2({32, 48},
                        {{48, 48, 128, 1, false, false, 3, 6},
                         {128, 96, 512, 1, true, false, 3, 6},
                         {512, 192, 1024, 3, true, true, 5, 6},
                         {1024, 384, 2048, 1, true, true, 5, 6}},
                        false)},
      {"hgnetv2_b5", v2({32, 64},
                        {{64, 64, 128, 1, false, false, 3, 6},
                         {128, 128, 512, 2, true, false, 3, 6},
                         {512, 256, 1024, 5, true, true, 5, 6},
                         {1024, 512, 2048, 2, true, true, 5, 6}},
                        false)},
      {"hgnetv2_b6", v2({48, 96},
                        {{96, 96, 192, 2, false, false, 3, 6},
                         {192, 192, 512, 3, true, false, 3, 6},
                         {512, 384, 1024, 6, true, true, 5, 6},
                         {1024, 768, 2048, 3, true, true, 5, 6}},
                        false)},
  };
  register_configs<HgNetImpl>("hgnet", models);
}

}  // namespace hgnet
}  // namespace smp::timm
