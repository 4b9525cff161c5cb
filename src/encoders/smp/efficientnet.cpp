// smp's efficientnet-b0 .. b7: the lukemelas EfficientNet-PyTorch network smp vendors, with its
// parameter names (_conv_stem, _bn0, _blocks.N._depthwise_conv, ...), its TensorFlow-style padding
// fixed at build time for each model's nominal image size, and smp's feature taps and dilation.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "encoders/smp/common.h"

namespace smp::smp_encoders::efficientnet {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

struct EfficientNetSpec {
  double width, depth;
  // The resolution the model is named for: it, not the input, sets every 'SAME' padding.
  int64_t image_size;
  // Blocks whose outputs are features 2 .. 5.
  std::vector<int64_t> out_indexes;
  std::vector<int64_t> out_channels;
};

// One stage of the base (b0) network; every stage's first block has the stride, the rest stride 1.
struct StageArgs {
  int64_t repeats, kernel, stride, expand, in, out;
};
const std::vector<StageArgs> kEffStages = {
    {1, 3, 1, 1, 32, 16},   {2, 3, 2, 6, 16, 24},   {2, 5, 2, 6, 24, 40},  {3, 3, 2, 6, 40, 80},
    {3, 5, 1, 6, 80, 112}, {4, 5, 2, 6, 112, 192}, {1, 3, 1, 6, 192, 320}};
constexpr double kEffSeRatio = 0.25;
constexpr double kEffBnMomentum = 0.01;
constexpr double kEffBnEps = 1e-3;
constexpr double kEffDropConnectRate = 0.2;

int64_t round_filters(int64_t filters, double multiplier) {
  constexpr int64_t divisor = 8;
  const double scaled = static_cast<double>(filters) * multiplier;
  int64_t rounded = std::max(divisor, static_cast<int64_t>(scaled + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * scaled) rounded += divisor;
  return rounded;
}

int64_t round_repeats(int64_t repeats, double multiplier) {
  return static_cast<int64_t>(std::ceil(multiplier * static_cast<double>(repeats)));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

nn::BatchNorm2d eff_batch_norm(int64_t channels) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).momentum(kEffBnMomentum).eps(kEffBnEps));
}

// An unpadded Conv2d behind a zero pad fixed at build time: the 'SAME' padding of an input of
// `image_size` (odd extra pixel right/bottom), whatever size the actual input has.
class StaticSameConv2dImpl : public nn::Conv2dImpl {
 public:
  StaticSameConv2dImpl(nn::Conv2dOptions options, int64_t image_size) : nn::Conv2dImpl(std::move(options)) {
    const auto k = (*this->options.kernel_size())[0], s = (*this->options.stride())[0];
    const auto d = (*this->options.dilation())[0];
    const int64_t pad = std::max<int64_t>((ceil_div(image_size, s) - 1) * s + (k - 1) * d + 1 - image_size, 0);
    if (pad > 0) pad_ = {pad / 2, pad - pad / 2, pad / 2, pad - pad / 2};
  }

  // smp's replace_strides_with_dilation: stride 1, symmetric padding (k / 2) * rate inside the conv,
  // and the fixed pad dropped.
  void dilate(int64_t rate) {
    const auto k = (*options.kernel_size())[0];
    options.stride(1).dilation(rate).padding(torch::ExpandingArray<2>(k / 2 * rate));
    pad_.clear();
  }

  torch::Tensor forward(const torch::Tensor& x) {
    return nn::Conv2dImpl::forward(pad_.empty() ? x : F::pad(x, F::PadFuncOptions(pad_)));
  }

 private:
  std::vector<int64_t> pad_;
};
TORCH_MODULE(StaticSameConv2d);

struct MBConvArgs {
  int64_t kernel, stride, expand, in, out;
  bool skip;
  int64_t image_size;  // of the block's input
};

// The inverted residual block: [1x1 expand] -> depthwise -> squeeze-excite -> 1x1 project (+ skip).
class MBConvBlockImpl : public nn::Module {
 public:
  explicit MBConvBlockImpl(const MBConvArgs& a) : skip_(a.skip) {
    const int64_t expanded = a.in * a.expand;
    if (a.expand != 1) {
      expand_conv = register_module(
          "_expand_conv", StaticSameConv2d(nn::Conv2dOptions(a.in, expanded, 1).bias(false), a.image_size));
      bn0 = register_module("_bn0", eff_batch_norm(expanded));
    }
    depthwise_conv = register_module(
        "_depthwise_conv",
        StaticSameConv2d(nn::Conv2dOptions(expanded, expanded, a.kernel).stride(a.stride).groups(expanded).bias(false),
                         a.image_size));
    bn1 = register_module("_bn1", eff_batch_norm(expanded));
    const int64_t squeezed = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(a.in) * kEffSeRatio));
    se_reduce = register_module("_se_reduce", StaticSameConv2d(nn::Conv2dOptions(expanded, squeezed, 1), 1));
    se_expand = register_module("_se_expand", StaticSameConv2d(nn::Conv2dOptions(squeezed, expanded, 1), 1));
    project_conv = register_module(
        "_project_conv", StaticSameConv2d(nn::Conv2dOptions(expanded, a.out, 1).bias(false),
                                          ceil_div(a.image_size, a.stride)));
    bn2 = register_module("_bn2", eff_batch_norm(a.out));
  }

  torch::Tensor forward(const torch::Tensor& input, double drop_rate) {
    auto x = input;
    if (expand_conv) x = torch::silu(bn0(expand_conv(x)));
    x = torch::silu(bn1(depthwise_conv(x)));
    auto s = torch::silu(se_reduce(F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1))));
    x = torch::sigmoid(se_expand(s)) * x;
    x = bn2(project_conv(x));
    if (!skip_) return x;
    if (is_training() && drop_rate > 0) {
      // Drop connect as the reference draws it (keep_prob + U[0,1) floored), so the same seed drops
      // the same samples.
      const double keep = 1.0 - drop_rate;
      const auto mask = torch::floor(torch::rand({x.size(0), 1, 1, 1}, x.options()) + keep);
      x = x / keep * mask;
    }
    return x + input;
  }

 private:
  bool skip_;
  StaticSameConv2d expand_conv{nullptr}, depthwise_conv{nullptr}, se_reduce{nullptr}, se_expand{nullptr},
      project_conv{nullptr};
  nn::BatchNorm2d bn0{nullptr}, bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(MBConvBlock);

class EfficientNetEncoderImpl : public SmpEncoderImpl {
 public:
  EfficientNetEncoderImpl(const EfficientNetSpec& spec, const EncoderOptions& o)
      : SmpEncoderImpl(o), out_indexes_(spec.out_indexes) {
    // smp's EfficientNetEncoder refuses depth 1 (its message still says [1, 5]).
    if (depth_ < 2)
      throw std::invalid_argument(
          fmt::format("{}: encoder_depth should be in range [2, 5] for this encoder, got {}", o.name(), depth_));
    check_output_stride(o);
    int64_t size = spec.image_size;
    const int64_t stem = round_filters(32, spec.width);
    conv_stem = register_module(
        "_conv_stem", StaticSameConv2d(nn::Conv2dOptions(o.in_channels(), stem, 3).stride(2).bias(false), size));
    bn0 = register_module("_bn0", eff_batch_norm(stem));
    size = ceil_div(size, 2);

    blocks = register_module("_blocks", nn::ModuleList());
    int64_t last = 0;
    for (const auto& st : kEffStages) {
      const int64_t in = round_filters(st.in, spec.width), out = round_filters(st.out, spec.width);
      const int64_t repeats = round_repeats(st.repeats, spec.depth);
      // The reference keeps a stage's first stride as a list, so its `stride == 1` test fails there:
      // only the repeated blocks get the skip.
      blocks->push_back(MBConvBlock(MBConvArgs{st.kernel, st.stride, st.expand, in, out, false, size}));
      size = ceil_div(size, st.stride);
      for (int64_t r = 1; r < repeats; ++r)
        blocks->push_back(MBConvBlock(MBConvArgs{st.kernel, 1, st.expand, out, out, true, size}));
      last = out;
    }
    // The head stays (unused, but in smp's state dict); only the classifier is deleted.
    const int64_t head = round_filters(1280, spec.width);
    conv_head = register_module("_conv_head", StaticSameConv2d(nn::Conv2dOptions(last, head, 1).bias(false), size));
    bn1 = register_module("_bn1", eff_batch_norm(head));

    // smp's get_stages groups blocks by feature index, not by the stride they run at: the blocks
    // after feature 3's tap up to feature 4's run "at 16", every later block "at 32".
    const auto n = static_cast<int64_t>(blocks->size());
    for (int64_t i = spec.out_indexes[1] + 1; i < n; ++i) {
      const int64_t rate = stage_dilation(i <= spec.out_indexes[2] ? 16 : 32, output_stride_);
      if (rate == 1) continue;
      for (const auto& m : blocks->ptr(static_cast<size_t>(i))->modules())
        if (auto* conv = m->as<StaticSameConv2dImpl>()) conv->dilate(rate);
    }
    set_out_channels(spec.out_channels);
    load_weights(*this, o.weights(), "_conv_stem.weight", drop_prefixes({"_fc."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& input) override {
    std::vector<torch::Tensor> features{input};
    auto x = torch::silu(bn0(conv_stem(input)));
    features.push_back(x);
    const auto n = blocks->size();
    for (size_t i = 0; i < n && static_cast<int64_t>(features.size()) <= depth_; ++i) {
      // Drop-connect rate grows with the block's index over all blocks, tapped or not.
      const double drop_rate = kEffDropConnectRate * static_cast<double>(i) / static_cast<double>(n);
      x = blocks->ptr<MBConvBlockImpl>(i)->forward(x, drop_rate);
      if (std::find(out_indexes_.begin(), out_indexes_.end(), static_cast<int64_t>(i)) != out_indexes_.end())
        features.push_back(x);
    }
    return features;
  }

 private:
  std::vector<int64_t> out_indexes_;
  StaticSameConv2d conv_stem{nullptr}, conv_head{nullptr};
  nn::BatchNorm2d bn0{nullptr}, bn1{nullptr};
  nn::ModuleList blocks{nullptr};
};

}  // namespace

void register_group() {
  // imagenet weights expect ImageNet statistics, advprop mean = std = 0.5.
  auto weights = [](const char* imagenet, const char* advprop) {
    return std::vector<Pretrained>{{"imagenet", imagenet}, {"advprop", advprop, centered_preprocessing()}};
  };
  add<EfficientNetEncoderImpl>("efficientnet-b0",
                               EfficientNetSpec{1.0, 1.0, 224, {2, 4, 8, 15}, {3, 32, 24, 40, 112, 320}},
                               weights("1bbe7ecc1d5ea1d2058de1a2db063b8701aff314",
                                       "29043c08140d9c6ee7de1468d55923f2b06bcec2"));
  add<EfficientNetEncoderImpl>("efficientnet-b1",
                               EfficientNetSpec{1.0, 1.1, 240, {4, 7, 15, 22}, {3, 32, 24, 40, 112, 320}},
                               weights("5d637466a5215de300a8ccb13a39357df2df2bf4",
                                       "2e518b8b0955bbab467f50525578dab6b6086afc"));
  add<EfficientNetEncoderImpl>("efficientnet-b2",
                               EfficientNetSpec{1.1, 1.2, 260, {4, 7, 15, 22}, {3, 32, 24, 48, 120, 352}},
                               weights("a96d4f0295ffbae18ebba173bf7f3c0c8f21990e",
                                       "be788c20dfb0bbe83b4c439f9cfe0dd937c0783e"));
  add<EfficientNetEncoderImpl>("efficientnet-b3",
                               EfficientNetSpec{1.2, 1.4, 300, {4, 7, 17, 25}, {3, 40, 32, 48, 136, 384}},
                               weights("074c54a6c473e0d294690d49cedb6cf463e7127d",
                                       "9ccc166d87bd9c08d6bed4477638c7f4bb3eec78"));
  add<EfficientNetEncoderImpl>("efficientnet-b4",
                               EfficientNetSpec{1.4, 1.8, 380, {5, 9, 21, 31}, {3, 48, 32, 56, 160, 448}},
                               weights("05cd5dde5dab658f00c463f9b9aa0ced76784f40",
                                       "f04caa809ea4eb08ee9e7fd555f5514ebe2a9ef5"));
  add<EfficientNetEncoderImpl>("efficientnet-b5",
                               EfficientNetSpec{1.6, 2.2, 456, {7, 12, 26, 38}, {3, 48, 40, 64, 176, 512}},
                               weights("69f4d28460a4e421b7860bc26ee7d832e03e01ca",
                                       "dabe78fc8ab7ce93ddc2bb156b01db227caede88"));
  add<EfficientNetEncoderImpl>("efficientnet-b6",
                               EfficientNetSpec{1.8, 2.6, 528, {8, 14, 30, 44}, {3, 56, 40, 72, 200, 576}},
                               weights("8570752016f7c62ae149cffa058550fe44e21c8b",
                                       "c2dbb4d1359151165ec7b96cfe54a9cac2142a31"));
  add<EfficientNetEncoderImpl>("efficientnet-b7",
                               EfficientNetSpec{2.0, 3.1, 600, {10, 17, 37, 54}, {3, 64, 48, 80, 224, 640}},
                               weights("5a5dbe687d612ebc3dca248274fd1191111deda6",
                                       "ce33edb4e80c0cde268f098ae2299e23f615577d"));
}

}  // namespace smp::smp_encoders::efficientnet
