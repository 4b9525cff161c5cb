// smp's torchvision-style ResNet and ResNeXt encoders (resnet18 .. resnext101_32x48d), on timm's
// resnet blocks with torchvision's parameter names.
#include "encoders/smp/common.h"
#include "timm/models/resnet_blocks.h"

namespace smp::smp_encoders::resnet {

namespace nn = torch::nn;
namespace F = torch::nn::functional;
namespace rb = timm::resnet_blocks;

namespace {

struct ResNetSpec {
  bool bottleneck;
  std::vector<int64_t> layers;
  int64_t groups = 1, width_per_group = 64;
};

class ResNetEncoderImpl : public SmpEncoderImpl {
 public:
  ResNetEncoderImpl(const ResNetSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    const int64_t expansion = spec.bottleneck ? 4 : 1;
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels(), 64, 7).stride(2).padding(3).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(64));
    int64_t inplanes = 64;
    std::vector<int64_t> channels = {3, 64};
    const std::vector<int64_t> planes = {64, 128, 256, 512};
    for (size_t s = 0; s < 4; ++s) {
      // smp's make_dilated: stages past the output stride trade their stride for dilation.
      const int64_t dilation = stage_dilation(int64_t{4} << s, output_stride_);
      const int64_t stride = s == 0 || dilation > 1 ? 1 : 2;
      nn::Sequential layer;
      for (int64_t b = 0; b < spec.layers[s]; ++b) {
        rb::BlockArgs a{};
        a.inplanes = inplanes;
        a.width = spec.bottleneck
                      ? static_cast<int64_t>(static_cast<double>(planes[s]) * (static_cast<double>(spec.width_per_group) / 64.0)) *
                            spec.groups
                      : planes[s];
        a.first_planes = a.width;
        a.outplanes = planes[s] * expansion;
        a.stride = b == 0 ? stride : 1;
        a.dilation = a.first_dilation = dilation;
        a.cardinality = spec.groups;
        a.group_norm = false;
        if (b == 0 && (stride != 1 || inplanes != a.outplanes))
          a.downsample = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(inplanes, a.outplanes, 1).stride(stride).bias(false)),
                                        nn::BatchNorm2d(a.outplanes));
        if (spec.bottleneck)
          layer->push_back(rb::Bottleneck(a));
        else
          layer->push_back(rb::BasicBlock(a));
        inplanes = a.outplanes;
      }
      layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
      channels.push_back(inplanes);
    }
    set_out_channels(channels);
    load_weights(*this, o.weights(), "conv1.weight", drop_prefixes({"fc."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = torch::relu(bn1(conv1(x)));
    features.push_back(y);
    if (depth_ >= 2) y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      y = layers_[static_cast<size_t>(s)]->forward(y);
      features.push_back(y);
    }
    return features;
  }

 private:
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  std::vector<nn::Sequential> layers_;
};

}  // namespace

void register_group() {
  add<ResNetEncoderImpl>("resnet18", ResNetSpec{false, {2, 2, 2, 2}},
      {{"imagenet", "3f2325ff978283d47aa6a1d6878ca20565622683"},
       {"ssl", "d600d5116aac2e6e595f99f40612074c723c00b2"},
       {"swsl", "0e3a35d4d8e344088c14a96eee502a88ac70eae1"}});
  add<ResNetEncoderImpl>("resnet34", ResNetSpec{false, {3, 4, 6, 3}},
      {{"imagenet", "7a57b34f723329ff020b3f8bc41771163c519d0c"}});
  add<ResNetEncoderImpl>("resnet50", ResNetSpec{true, {3, 4, 6, 3}},
      {{"imagenet", "00cb74e366966d59cd9a35af57e618af9f88efe9"},
       {"ssl", "d07daf5b4377f3700c6ac61906b0aafbc4eca46b"},
       {"swsl", "b9520cce124f91c6fe7eee45721a2c7954f0d8c0"}});
  add<ResNetEncoderImpl>("resnet101", ResNetSpec{true, {3, 4, 23, 3}},
      {{"imagenet", "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1"}});
  add<ResNetEncoderImpl>("resnet152", ResNetSpec{true, {3, 8, 36, 3}},
      {{"imagenet", "951dd835e9d086628e447b484584c8983f9e1dd0"}});
  add<ResNetEncoderImpl>("resnext50_32x4d", ResNetSpec{true, {3, 4, 6, 3}, 32, 4},
      {{"imagenet", "329793c85d62fd340ae42ae39fb905a63df872e7"},
       {"ssl", "9b67cff77d060c7044493a58c24d1007c1eb06c3"},
       {"swsl", "52e6e49da61b8e26ca691e1aef2cbb952884057d"}});
  add<ResNetEncoderImpl>("resnext101_32x4d", ResNetSpec{true, {3, 4, 23, 3}, 32, 4},
      {{"ssl", "b39796c8459084d13523b7016c3ef13a2e9e472b"},
       {"swsl", "3f8355b4892a31f001a832b49b2b01484d48516a"}});
  add<ResNetEncoderImpl>("resnext101_32x8d", ResNetSpec{true, {3, 4, 23, 3}, 32, 8},
      {{"imagenet", "221af6198d03a4ee88992f78a1ee81b46a52d339"},
       {"instagram", "44cd927aa6e64673ffe9d31230bad44abc18b823"},
       {"ssl", "723a95ddeed335c9488c37c6cbef13d779ac8f97"},
       {"swsl", "58cf0bb65f91365470398080d9588b187d1777c4"}});
  add<ResNetEncoderImpl>("resnext101_32x16d", ResNetSpec{true, {3, 4, 23, 3}, 32, 16},
      {{"instagram", "64e8e320eeae6501185b0627b2429a68e52d050c"},
       {"ssl", "1283fe03fbb6aa2599b2df24095255acb93c3d5c"},
       {"swsl", "30ba61bbd4d6af0d955c513dbb4f557b84eb094f"}});
  add<ResNetEncoderImpl>("resnext101_32x32d", ResNetSpec{true, {3, 4, 23, 3}, 32, 32},
      {{"instagram", "c9405de121fdaa275a89de470fb19409e3eeaa86"}});
  add<ResNetEncoderImpl>("resnext101_32x48d", ResNetSpec{true, {3, 4, 23, 3}, 32, 48},
      {{"instagram", "53e61a962b824ad7027409821f9ac3e3336dd024"}});
}

}  // namespace smp::smp_encoders::resnet
