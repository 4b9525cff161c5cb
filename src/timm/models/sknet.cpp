// Selective Kernel ResNets (skresnet*, skresnext50_32x4d), as timm's sknet.py builds them: timm's
// ResNet with the residual blocks' 3x3 convolution replaced by a SelectiveKernel layer.
#include "timm/models/sknet.h"

#include "timm/families.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/selective_kernel.h"
#include "timm/models/resnet_blocks.h"

namespace smp::timm {

namespace sknet {
namespace {

namespace nn = torch::nn;
using resnet_blocks::BlockArgs;

layers::SelectiveKernelOptions sk_options(const SkNetConfig& cfg, int64_t in, int64_t out, const BlockArgs& a) {
  return layers::SelectiveKernelOptions(in, out)
      .stride(a.stride)
      .dilation(a.first_dilation)
      .rd_ratio(cfg.rd_ratio)
      .rd_divisor(cfg.rd_divisor)
      .split_input(cfg.split_input);
}

// BasicBlock with its first conv selective: SK(3x3 + dilated 3x3), then 3x3 conv + BN.
class SkBasicImpl : public resnet_blocks::BlockBase {
 public:
  SkBasicImpl(const BlockArgs& a, const SkNetConfig& cfg) {
    conv1_ = register_module("conv1", layers::SelectiveKernel(sk_options(cfg, a.inplanes, a.first_planes, a)));
    conv2_ = register_module("conv2", layers::ConvNormAct(layers::ConvNormActOptions(a.first_planes, a.outplanes, 3)
                                                              .dilation(a.dilation)
                                                              .act("")));
    init_tail(a);
  }

  torch::Tensor forward(const torch::Tensor& x) { return finish(conv2_(conv1_(x)), x); }

 private:
  layers::SelectiveKernel conv1_{nullptr};
  layers::ConvNormAct conv2_{nullptr};
};
TORCH_MODULE(SkBasic);

// Bottleneck with its grouped 3x3 conv selective: 1x1 conv, SK, 1x1 conv + BN.
class SkBottleneckImpl : public resnet_blocks::BlockBase {
 public:
  SkBottleneckImpl(const BlockArgs& a, const SkNetConfig& cfg) {
    conv1_ = register_module("conv1", layers::ConvNormAct(layers::ConvNormActOptions(a.inplanes, a.first_planes, 1)));
    conv2_ = register_module(
        "conv2", layers::SelectiveKernel(sk_options(cfg, a.first_planes, a.width, a).groups(a.cardinality)));
    conv3_ = register_module("conv3",
                             layers::ConvNormAct(layers::ConvNormActOptions(a.width, a.outplanes, 1).act("")));
    init_tail(a);
  }

  torch::Tensor forward(const torch::Tensor& x) { return finish(conv3_(conv2_(conv1_(x))), x); }

 private:
  layers::ConvNormAct conv1_{nullptr}, conv3_{nullptr};
  layers::SelectiveKernel conv2_{nullptr};
};
TORCH_MODULE(SkBottleneck);

SkNetConfig sk_config(bool bottleneck, std::vector<int64_t> layers) {
  SkNetConfig c;
  c.bottleneck = bottleneck;
  c.layers = std::move(layers);
  return c;
}

}  // namespace

Backbone create_sknet(const std::string& name, const SkNetConfig& cfg, const ModelArgs& args) {
  resnet::CustomBlockResNet spec;
  spec.bottleneck = cfg.bottleneck;
  spec.layers = cfg.layers;
  spec.cardinality = cfg.cardinality;
  spec.base_width = cfg.base_width;
  spec.d_variant = cfg.d_variant;
  spec.make_block = [cfg](const BlockArgs& a) {
    return cfg.bottleneck ? nn::AnyModule(SkBottleneck(a, cfg)) : nn::AnyModule(SkBasic(a, cfg));
  };
  return resnet::create_custom_block_resnet(name, spec, args);
}

void register_family() {
  const std::vector<int64_t> r18{2, 2, 2, 2}, r34{3, 4, 6, 3};
  // The basic-block nets: attention at 1/8 of the width, rounded to 16.
  auto basic = [](std::vector<int64_t> layers) {
    auto c = sk_config(false, std::move(layers));
    c.rd_ratio = 1.0 / 8;
    c.rd_divisor = 16;
    return c;
  };
  auto skresnet50d = sk_config(true, r34);
  skresnet50d.d_variant = true;
  // The paper's SKNet-50: no input split, attention at 1/16 rounded to 32.
  auto skresnext = sk_config(true, r34);
  skresnext.cardinality = 32;
  skresnext.base_width = 4;
  skresnext.rd_divisor = 32;
  skresnext.split_input = false;

  const std::vector<std::pair<std::string, SkNetConfig>> models = {
      {"skresnet18", basic(r18)},
      {"skresnet34", basic(r34)},
      {"skresnet50", sk_config(true, r34)},
      {"skresnet50d", skresnet50d},
      {"skresnext50_32x4d", skresnext},
  };
  for (const auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "sknet";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) { return create_sknet(name, cfg, args); };
    register_model(std::move(entry));
  }
}

}  // namespace sknet
}  // namespace smp::timm
