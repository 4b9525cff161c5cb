// smp's mobilenet_v2: torchvision's MobileNetV2 with torchvision's parameter names (features.<index>).
// Dilation follows smp's make_dilated: every convolution of features[7:14] (reduction 16) and
// features[14:] (reduction 32) past the output stride gets stride 1, the stage's dilation and
// padding (kernel / 2) * dilation, the 1x1 and depthwise ones alike.
#include "encoders/smp/common.h"

#include <array>
#include <vector>

namespace smp::smp_encoders::mobilenet {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Convolution, BatchNorm and ReLU6 under the names "0" and "1".
class ConvBnReLU6Impl : public nn::Module {
 public:
  ConvBnReLU6Impl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation, int64_t groups = 1) {
    conv_ = register_module("0", dilatable_conv(in, out, kernel, stride, dilation, groups));
    bn_ = register_module("1", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return F::relu6(bn_(conv_(x))); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvBnReLU6);

// Optional 1x1 expansion, depthwise 3x3, linear 1x1 projection; residual when the shape is kept.
class InvertedResidualImpl : public nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio, int64_t dilation)
      : residual_(stride == 1 && in == out) {
    const int64_t hidden = in * expand_ratio;
    nn::Sequential layers;
    if (expand_ratio != 1) layers->push_back(ConvBnReLU6(in, hidden, 1, 1, dilation));
    layers->push_back(ConvBnReLU6(hidden, hidden, 3, stride, dilation, hidden));
    layers->push_back(dilatable_conv(hidden, out, 1, 1, dilation));
    layers->push_back(nn::BatchNorm2d(out));
    conv_ = register_module("conv", layers);
  }
  torch::Tensor forward(const torch::Tensor& x) { return residual_ ? x + conv_->forward(x) : conv_->forward(x); }

 private:
  bool residual_;
  nn::Sequential conv_{nullptr};
};
TORCH_MODULE(InvertedResidual);

// The indices in `features` whose outputs are the encoder's features 1..5.
constexpr std::array<size_t, 5> kFeatureIndices = {1, 3, 6, 13, 18};

class MobileNetV2EncoderImpl : public SmpEncoderImpl {
 public:
  explicit MobileNetV2EncoderImpl(const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    features = register_module("features", nn::Sequential());
    // The dilation of features[7:14] and of features[14:].
    const int64_t dilation16 = stage_dilation(16, output_stride_), dilation32 = stage_dilation(32, output_stride_);
    const auto dilation_at = [&](size_t index) { return index >= 14 ? dilation32 : index >= 7 ? dilation16 : 1; };
    int64_t chs = 32;
    features->push_back(ConvBnReLU6(o.in_channels(), chs, 3, 2, 1));
    // (expand ratio, out channels, blocks, first stride) per stage
    const int64_t stages[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    for (const auto& s : stages)
      for (int64_t b = 0; b < s[2]; ++b) {
        features->push_back(InvertedResidual(chs, s[1], b == 0 ? s[3] : 1, s[0], dilation_at(features->size())));
        chs = s[1];
      }
    features->push_back(ConvBnReLU6(chs, 1280, 1, 1, dilation_at(features->size())));
    set_out_channels({3, 16, 24, 32, 96, 1280});
    load_weights(*this, o.weights(), "features.0.0.weight", drop_prefixes({"classifier."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> out{x};
    const auto wanted = static_cast<size_t>(depth_) + 1;
    auto y = x;
    size_t i = 0;
    for (auto& module : *features) {
      y = module.forward(y);
      if (i++ == kFeatureIndices[out.size() - 1]) {
        out.push_back(y);
        if (out.size() == wanted) break;
      }
    }
    return out;
  }

 private:
  nn::Sequential features{nullptr};
};

}  // namespace

void register_group() {
  add("mobilenet_v2",
      Factory([](const EncoderOptions& o) -> std::shared_ptr<SmpEncoderImpl> {
        return std::make_shared<MobileNetV2EncoderImpl>(o);
      }),
      {{"imagenet", "e67aa804e17f7b404b629127eabbd224c4e0690b"}});
}

}  // namespace smp::smp_encoders::mobilenet
