// smp's SENet encoders (Cadene's pretrainedmodels port): SE-ResNet, SE-ResNeXt and SENet-154, with
// their parameter names and smp's dilation of layer3 / layer4.
#include "encoders/smp/common.h"

namespace smp::smp_encoders::senet {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Which bottleneck the network stacks; they differ in widths and in which conv carries the stride.
enum class BlockKind {
  senet154,  // 1x1 to 2 * planes, grouped 3x3 (strided) to 4 * planes
  resnet,    // strided 1x1 to planes (Caffe's placement), 3x3
  resnext,   // 1x1 to the group width, grouped 3x3 (strided)
};

struct SENetSpec {
  BlockKind kind;
  std::vector<int64_t> layers;
  int64_t groups;
  int64_t inplanes;  // layer0's output width
  bool input_3x3;    // layer0 is three 3x3 convs instead of one 7x7
  int64_t downsample_kernel;  // of layer2..layer4's shortcut conv (layer1's is always 1x1)
  std::vector<int64_t> channels;
};

// Squeeze-and-excitation with 1x1 convs (biased) as its two layers, reduction 16.
class SEModuleImpl : public nn::Module {
 public:
  explicit SEModuleImpl(int64_t channels) {
    fc1 = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, channels / 16, 1)));
    fc2 = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(channels / 16, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto s = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1));
    return x * torch::sigmoid(fc2(torch::relu(fc1(s))));
  }

 private:
  nn::Conv2d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SEModule);

class SEBlockImpl : public nn::Module {
 public:
  SEBlockImpl(BlockKind kind, int64_t inplanes, int64_t planes, int64_t groups, int64_t stride, int64_t dilation,
              nn::Sequential shortcut) {
    int64_t mid = 0, width = 0;
    switch (kind) {
      case BlockKind::senet154:
        mid = planes * 2;
        width = planes * 4;
        break;
      case BlockKind::resnet:
        mid = width = planes;
        break;
      case BlockKind::resnext:
        mid = width = planes * 4 / 64 * groups;  // base width 4
        break;
    }
    const bool stride_first = kind == BlockKind::resnet;
    const int64_t out = planes * 4;
    conv1 = register_module("conv1", dilatable_conv(inplanes, mid, 1, stride_first ? stride : 1, dilation));
    bn1 = register_module("bn1", nn::BatchNorm2d(mid));
    conv2 = register_module("conv2", dilatable_conv(mid, width, 3, stride_first ? 1 : stride, dilation, groups));
    bn2 = register_module("bn2", nn::BatchNorm2d(width));
    conv3 = register_module("conv3", dilatable_conv(width, out, 1, 1, dilation));
    bn3 = register_module("bn3", nn::BatchNorm2d(out));
    se_module = register_module("se_module", SEModule(out));
    if (shortcut) downsample = register_module("downsample", shortcut);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(bn2(conv2(y)));
    y = bn3(conv3(y));
    return torch::relu(se_module(y) + (downsample ? downsample->forward(x) : x));
  }

 private:
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  SEModule se_module{nullptr};
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(SEBlock);

class SENetEncoderImpl : public SmpEncoderImpl {
 public:
  SENetEncoderImpl(const SENetSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    layer0 = nn::Sequential();
    if (spec.input_3x3) {
      layer0->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels(), 64, 3).stride(2).padding(1).bias(false)));
      layer0->push_back("bn1", nn::BatchNorm2d(64));
      layer0->push_back("relu1", nn::ReLU());
      layer0->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(64, 64, 3).padding(1).bias(false)));
      layer0->push_back("bn2", nn::BatchNorm2d(64));
      layer0->push_back("relu2", nn::ReLU());
      layer0->push_back("conv3", nn::Conv2d(nn::Conv2dOptions(64, spec.inplanes, 3).padding(1).bias(false)));
      layer0->push_back("bn3", nn::BatchNorm2d(spec.inplanes));
      layer0->push_back("relu3", nn::ReLU());
    } else {
      layer0->push_back("conv1",
                        nn::Conv2d(nn::Conv2dOptions(o.in_channels(), spec.inplanes, 7).stride(2).padding(3).bias(false)));
      layer0->push_back("bn1", nn::BatchNorm2d(spec.inplanes));
      layer0->push_back("relu1", nn::ReLU());
    }
    register_module("layer0", layer0);

    int64_t inplanes = spec.inplanes;
    for (size_t s = 0; s < 4; ++s) {
      const int64_t planes = int64_t{64} << s, stride = s == 0 ? 1 : 2;
      // layer3 and layer4 (reductions 16 and 32) are what make_dilated may dilate.
      const int64_t dilation = stage_dilation(int64_t{4} << s, output_stride_);
      const int64_t kernel = s == 0 ? 1 : spec.downsample_kernel;
      nn::Sequential layer;
      for (int64_t b = 0; b < spec.layers[s]; ++b) {
        nn::Sequential downsample{nullptr};
        if (b == 0 && (stride != 1 || inplanes != planes * 4))
          downsample = nn::Sequential(dilatable_conv(inplanes, planes * 4, kernel, stride, dilation),
                                      nn::BatchNorm2d(planes * 4));
        layer->push_back(SEBlock(spec.kind, inplanes, planes, spec.groups, b == 0 ? stride : 1, dilation, downsample));
        inplanes = planes * 4;
      }
      layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
    }
    set_out_channels(spec.channels);
    load_weights(*this, o.weights(), "layer0.conv1.weight", drop_prefixes({"last_linear."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = layer0->forward(x);
    features.push_back(y);
    // Caffe's pooling: no padding, ceil mode.
    if (depth_ >= 2) y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).ceil_mode(true));
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      y = layers_[static_cast<size_t>(s)]->forward(y);
      features.push_back(y);
    }
    return features;
  }

 private:
  nn::Sequential layer0{nullptr};
  std::vector<nn::Sequential> layers_;
};

}  // namespace

void register_group() {
  // All six weights expect pretrainedmodels' ImageNet settings (RGB in [0, 1], ImageNet mean/std).
  const std::vector<int64_t> channels = {3, 64, 256, 512, 1024, 2048};
  add<SENetEncoderImpl>("senet154",
                        SENetSpec{BlockKind::senet154, {3, 8, 36, 3}, 64, 128, true, 3, {3, 128, 256, 512, 1024, 2048}},
                        {{"imagenet", "249f45efc9881ba560a0c480128edbc34ab87e40"}});
  add<SENetEncoderImpl>("se_resnet50", SENetSpec{BlockKind::resnet, {3, 4, 6, 3}, 1, 64, false, 1, channels},
                        {{"imagenet", "e6b4bc2dc85226c3d3474544410724a485455459"}});
  add<SENetEncoderImpl>("se_resnet101", SENetSpec{BlockKind::resnet, {3, 4, 23, 3}, 1, 64, false, 1, channels},
                        {{"imagenet", "71fe95cc0a27f444cf83671f354de02dc741b18b"}});
  add<SENetEncoderImpl>("se_resnet152", SENetSpec{BlockKind::resnet, {3, 8, 36, 3}, 1, 64, false, 1, channels},
                        {{"imagenet", "e79fc3d9d76f197bd76a2593c2054edf1083fe32"}});
  add<SENetEncoderImpl>("se_resnext50_32x4d", SENetSpec{BlockKind::resnext, {3, 4, 6, 3}, 32, 64, false, 1, channels},
                        {{"imagenet", "73246406d879a2b0e3fdfe6fddd56347d38f38ae"}});
  add<SENetEncoderImpl>("se_resnext101_32x4d",
                        SENetSpec{BlockKind::resnext, {3, 4, 23, 3}, 32, 64, false, 1, channels},
                        {{"imagenet", "18808a4276f46421d358a9de554e0b93c2795df4"}});
}

}  // namespace smp::smp_encoders::senet
