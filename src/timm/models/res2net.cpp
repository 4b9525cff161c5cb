// Res2Net / Res2NeXt (res2net*, res2next50), as timm's res2net.py builds them: timm's ResNet whose
// bottleneck splits its 3x3 stage into `scale` channel groups convolved hierarchically.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/models/resnet_blocks.h"

namespace smp::timm {

namespace res2net {
namespace {

namespace nn = torch::nn;
using resnet_blocks::BlockArgs;

struct Res2NetConfig {
  std::vector<int64_t> layers;
  int64_t base_width = 26, cardinality = 1, scale = 4;
  bool d_variant = false;
};

// The multi-scale bottleneck: 1x1 conv to width*scale, then scale-1 chained 3x3 convs on the
// channel groups (each fed the previous group's output), the last group passed through (pooled
// when the block downsamples), 1x1 conv back out.
class Bottle2neckImpl : public resnet_blocks::BlockBase {
 public:
  Bottle2neckImpl(BlockArgs a, int64_t scale) : scale_(scale), width_(a.width) {
    // timm's block takes no stochastic depth (its drop_path argument is swallowed).
    a.drop_path_rate = 0.0;
    is_first_ = a.stride > 1 || static_cast<bool>(a.downsample);
    const int64_t num_scales = std::max<int64_t>(1, scale - 1);
    conv1_ = register_module("conv1", resnet_blocks::conv(a.inplanes, width_ * scale, 1));
    bn1_ = register_module("bn1", nn::BatchNorm2d(width_ * scale));
    convs_ = register_module("convs", nn::ModuleList());
    bns_ = register_module("bns", nn::ModuleList());
    for (int64_t i = 0; i < num_scales; ++i) {
      convs_->push_back(resnet_blocks::conv(width_, width_, 3, a.stride, a.first_dilation, a.first_dilation,
                                            a.cardinality));
      bns_->push_back(nn::BatchNorm2d(width_));
    }
    if (is_first_) pool_ = nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(a.stride).padding(1));
    conv3_ = register_module("conv3", resnet_blocks::conv(width_ * scale, a.outplanes, 1));
    bn3_ = register_module("bn3", nn::BatchNorm2d(a.outplanes));
    init_tail(a);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn1_(conv1_(x)).relu_();
    const auto spx = y.split(width_, 1);
    std::vector<torch::Tensor> spo;
    spo.reserve(spx.size());
    torch::Tensor sp;
    for (size_t i = 0; i < convs_->size(); ++i) {
      sp = (i == 0 || is_first_) ? spx[i] : sp + spx[i];
      sp = bns_[i]->as<nn::BatchNorm2d>()->forward(convs_[i]->as<nn::Conv2d>()->forward(sp)).relu_();
      spo.push_back(sp);
    }
    if (scale_ > 1) spo.push_back(pool_ ? pool_(spx.back()) : spx.back());
    y = bn3_(conv3_(torch::cat(spo, 1)));
    return finish(y, x);
  }

 private:
  int64_t scale_, width_;
  bool is_first_ = false;
  nn::Conv2d conv1_{nullptr}, conv3_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn3_{nullptr};
  nn::ModuleList convs_{nullptr}, bns_{nullptr};
  nn::AvgPool2d pool_{nullptr};
};
TORCH_MODULE(Bottle2neck);

Backbone create(const std::string& name, const Res2NetConfig& cfg, const ModelArgs& args) {
  resnet::CustomBlockResNet spec;
  spec.bottleneck = true;
  spec.layers = cfg.layers;
  spec.cardinality = cfg.cardinality;
  spec.base_width = cfg.base_width;
  spec.d_variant = cfg.d_variant;
  const int64_t scale = cfg.scale;
  spec.make_block = [scale](const BlockArgs& a) { return nn::AnyModule(Bottle2neck(a, scale)); };
  return resnet::create_custom_block_resnet(name, spec, args);
}

}  // namespace

void register_family() {
  const std::vector<int64_t> r50{3, 4, 6, 3}, r101{3, 4, 23, 3};
  auto net = [](std::vector<int64_t> layers, int64_t width, int64_t scale, int64_t card = 1, bool d = false) {
    Res2NetConfig c;
    c.layers = std::move(layers);
    c.base_width = width;
    c.scale = scale;
    c.cardinality = card;
    c.d_variant = d;
    return c;
  };
  const std::vector<std::pair<std::string, Res2NetConfig>> models = {
      {"res2net50_26w_4s", net(r50, 26, 4)},  {"res2net101_26w_4s", net(r101, 26, 4)},
      {"res2net50_26w_6s", net(r50, 26, 6)},  {"res2net50_26w_8s", net(r50, 26, 8)},
      {"res2net50_48w_2s", net(r50, 48, 2)},  {"res2net50_14w_8s", net(r50, 14, 8)},
      {"res2next50", net(r50, 4, 4, 8)},      {"res2net50d", net(r50, 26, 4, 1, true)},
      {"res2net101d", net(r101, 26, 4, 1, true)},
  };
  for (const auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "res2net";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) { return create(name, cfg, args); };
    register_model(std::move(entry));
  }
}

}  // namespace res2net
}  // namespace smp::timm
