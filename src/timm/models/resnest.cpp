// ResNeSt (resnest*), as timm's resnest.py builds them: timm's ResNet (deep stem, average-pool
// shortcut) with bottlenecks whose 3x3 conv is a split-attention conv.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/split_attn.h"
#include "timm/models/resnet_blocks.h"

namespace smp::timm {

namespace resnest {
namespace {

namespace nn = torch::nn;
using resnet_blocks::BlockArgs;

struct ResNestConfig {
  std::vector<int64_t> layers;
  int64_t stem_width = 32, base_width = 64, cardinality = 1, radix = 2;
  bool avd_first = false;  // where the strided average pool goes: before or after the 3x3 stage
};

// 1x1 conv, split-attention 3x3 (a plain conv + BN + ReLU when radix is 0), 1x1 conv. Downsampling
// blocks stride through a 3x3 average pool instead of the conv.
class ResNestBottleneckImpl : public nn::Module {
 public:
  ResNestBottleneckImpl(const BlockArgs& a, const ResNestConfig& cfg) {
    const int64_t gw = a.width;
    int64_t stride = a.stride;
    if (stride > 1) {
      avd_ = nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(stride).padding(1));
      stride = 1;
    }
    avd_first_ = cfg.avd_first;
    conv1_ = register_module("conv1", resnet_blocks::conv(a.inplanes, gw, 1));
    bn1_ = register_module("bn1", nn::BatchNorm2d(gw));
    if (cfg.radix >= 1) {
      split_ = register_module("conv2", layers::SplitAttn(layers::SplitAttnOptions(gw, gw)
                                                               .stride(stride)
                                                               .padding(a.first_dilation)
                                                               .dilation(a.first_dilation)
                                                               .groups(a.cardinality)
                                                               .radix(cfg.radix)));
    } else {
      conv2_ = register_module("conv2", resnet_blocks::conv(gw, gw, 3, stride, a.first_dilation, a.first_dilation,
                                                            a.cardinality));
      bn2_ = register_module("bn2", nn::BatchNorm2d(gw));
    }
    conv3_ = register_module("conv3", resnet_blocks::conv(gw, a.outplanes, 1));
    bn3_ = register_module("bn3", nn::BatchNorm2d(a.outplanes));
    if (a.downsample) downsample_ = register_module("downsample", a.downsample);
    drop_path_rate_ = a.drop_path_rate;
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn1_(conv1_(x)).relu_();
    if (avd_ && avd_first_) y = avd_(y);
    y = split_ ? split_(y) : bn2_(conv2_(y)).relu_();
    if (avd_ && !avd_first_) y = avd_(y);
    y = bn3_(conv3_(y));
    // timm drops paths on the block input, and only where it feeds a projection shortcut.
    if (downsample_) {
      y.add_(downsample_->forward(layers::drop_path(x, drop_path_rate_, is_training())));
    } else {
      y.add_(x);
    }
    return y.relu_();
  }

 private:
  bool avd_first_ = false;
  double drop_path_rate_ = 0.0;
  nn::AvgPool2d avd_{nullptr};
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  layers::SplitAttn split_{nullptr};
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResNestBottleneck);

Backbone create(const std::string& name, const ResNestConfig& cfg, const ModelArgs& args) {
  resnet::CustomBlockResNet spec;
  spec.bottleneck = true;
  spec.layers = cfg.layers;
  spec.cardinality = cfg.cardinality;
  spec.base_width = cfg.base_width;
  spec.d_variant = true;
  spec.stem_width = cfg.stem_width;
  spec.make_block = [cfg](const BlockArgs& a) { return nn::AnyModule(ResNestBottleneck(a, cfg)); };
  return resnet::create_custom_block_resnet(name, spec, args);
}

}  // namespace

void register_family() {
  auto net = [](std::vector<int64_t> layers, int64_t stem_width = 32) {
    ResNestConfig c;
    c.layers = std::move(layers);
    c.stem_width = stem_width;
    return c;
  };
  auto r50_4s2x40d = net({3, 4, 6, 3});
  r50_4s2x40d.base_width = 40;
  r50_4s2x40d.cardinality = 2;
  r50_4s2x40d.radix = 4;
  r50_4s2x40d.avd_first = true;
  auto r50_1s4x24d = net({3, 4, 6, 3});
  r50_1s4x24d.base_width = 24;
  r50_1s4x24d.cardinality = 4;
  r50_1s4x24d.radix = 1;
  r50_1s4x24d.avd_first = true;
  const std::vector<std::pair<std::string, ResNestConfig>> models = {
      {"resnest14d", net({1, 1, 1, 1})},
      {"resnest26d", net({2, 2, 2, 2})},
      {"resnest50d", net({3, 4, 6, 3})},
      {"resnest101e", net({3, 4, 23, 3}, 64)},
      {"resnest200e", net({3, 24, 36, 3}, 64)},
      {"resnest269e", net({3, 30, 48, 8}, 64)},
      {"resnest50d_4s2x40d", r50_4s2x40d},
      {"resnest50d_1s4x24d", r50_1s4x24d},
  };
  for (const auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "resnest";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) { return create(name, cfg, args); };
    register_model(std::move(entry));
  }
}

}  // namespace resnest
}  // namespace smp::timm
