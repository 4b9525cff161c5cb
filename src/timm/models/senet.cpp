// timm's legacy SENet port (legacy_seresnet*, legacy_seresnext*, legacy_senet154): SE-ResNet,
// SE-ResNeXt and SENet-154 with the original Caffe-derived layout and parameter names.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace senet {
namespace {

namespace nn = torch::nn;

enum class BlockKind {
  kBasic,        // two 3x3 convs (strided first), expansion 1
  kSenet154,     // 1x1 to 2p, grouped strided 3x3 to 4p, 1x1
  kResNet,       // strided 1x1 to p (Caffe's placement), grouped 3x3, 1x1 to 4p
  kResNeXt,      // 1x1 to the group width, grouped strided 3x3, 1x1 to 4p
};

struct SENetConfig {
  BlockKind kind;
  std::vector<int64_t> layers;
  int64_t groups = 1;
  int64_t inplanes = 64;
  bool input_3x3 = false;
  int64_t down_kernel = 1, down_padding = 0;  // of layer2..layer4's projection shortcut
};

int64_t expansion(BlockKind k) { return k == BlockKind::kBasic ? 1 : 4; }

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).groups(groups).bias(false));
}

// Squeeze-and-excitation through biased 1x1 convs, reduction 16.
class SEModuleImpl : public nn::Module {
 public:
  explicit SEModuleImpl(int64_t channels) {
    fc1_ = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, channels / 16, 1)));
    fc2_ = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(channels / 16, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x * fc2_(fc1_(x.mean({2, 3}, /*keepdim=*/true)).relu_()).sigmoid_();
  }

 private:
  nn::Conv2d fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(SEModule);

class SEBlockImpl : public nn::Module {
 public:
  SEBlockImpl(BlockKind kind, int64_t inplanes, int64_t planes, int64_t groups, int64_t stride,
              nn::Sequential downsample) {
    const int64_t out = planes * expansion(kind);
    switch (kind) {
      case BlockKind::kBasic:
        conv1_ = conv(inplanes, planes, 3, stride, 1);
        bn1_ = nn::BatchNorm2d(planes);
        conv2_ = conv(planes, planes, 3, 1, 1, groups);
        bn2_ = nn::BatchNorm2d(planes);
        break;
      case BlockKind::kSenet154:
        conv1_ = conv(inplanes, planes * 2, 1);
        bn1_ = nn::BatchNorm2d(planes * 2);
        conv2_ = conv(planes * 2, planes * 4, 3, stride, 1, groups);
        bn2_ = nn::BatchNorm2d(planes * 4);
        conv3_ = conv(planes * 4, out, 1);
        break;
      case BlockKind::kResNet:
        conv1_ = conv(inplanes, planes, 1, stride);
        bn1_ = nn::BatchNorm2d(planes);
        conv2_ = conv(planes, planes, 3, 1, 1, groups);
        bn2_ = nn::BatchNorm2d(planes);
        conv3_ = conv(planes, out, 1);
        break;
      case BlockKind::kResNeXt: {
        const int64_t width = planes * 4 / 64 * groups;  // base width 4
        conv1_ = conv(inplanes, width, 1);
        bn1_ = nn::BatchNorm2d(width);
        conv2_ = conv(width, width, 3, stride, 1, groups);
        bn2_ = nn::BatchNorm2d(width);
        conv3_ = conv(width, out, 1);
        break;
      }
    }
    register_module("conv1", conv1_);
    register_module("bn1", bn1_);
    register_module("conv2", conv2_);
    register_module("bn2", bn2_);
    if (conv3_) {
      register_module("conv3", conv3_);
      bn3_ = register_module("bn3", nn::BatchNorm2d(out));
    }
    se_ = register_module("se_module", SEModule(out));
    if (downsample) downsample_ = register_module("downsample", downsample);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn1_(conv1_(x)).relu_();
    y = bn2_(conv2_(y));
    if (conv3_) y = bn3_(conv3_(y.relu_()));
    else y.relu_();
    y = se_(y);
    y.add_(downsample_ ? downsample_->forward(x) : x);
    return y.relu_();
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  SEModule se_{nullptr};
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(SEBlock);

constexpr int64_t kNumFeatures = 5;  // layer0 (stem), layer1..layer4

class SENetImpl : public BackboneImpl {
 public:
  SENetImpl(const std::string& name, const SENetConfig& cfg, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + "); the legacy SENet has no dilation");
    const int64_t num_stages = layers::last_feature_index(args, kNumFeatures, name);
    nn::Sequential layer0;
    if (cfg.input_3x3) {
      layer0->push_back("conv1", conv(args.in_chans(), 64, 3, 2, 1));
      layer0->push_back("bn1", nn::BatchNorm2d(64));
      layer0->push_back("relu1", nn::ReLU(nn::ReLUOptions(true)));
      layer0->push_back("conv2", conv(64, 64, 3, 1, 1));
      layer0->push_back("bn2", nn::BatchNorm2d(64));
      layer0->push_back("relu2", nn::ReLU(nn::ReLUOptions(true)));
      layer0->push_back("conv3", conv(64, cfg.inplanes, 3, 1, 1));
      layer0->push_back("bn3", nn::BatchNorm2d(cfg.inplanes));
      layer0->push_back("relu3", nn::ReLU(nn::ReLUOptions(true)));
    } else {
      layer0->push_back("conv1", conv(args.in_chans(), cfg.inplanes, 7, 2, 3));
      layer0->push_back("bn1", nn::BatchNorm2d(cfg.inplanes));
      layer0->push_back("relu1", nn::ReLU(nn::ReLUOptions(true)));
    }
    layer0_ = register_module("layer0", layer0);
    // Caffe's pooling: no padding, ceil mode.
    pool0_ = register_module("pool0", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)));
    feature_info_.push_back({"layer0", cfg.inplanes, 2});

    int64_t inplanes = cfg.inplanes;
    for (int64_t si = 0; si < 4; ++si) {
      const int64_t planes = int64_t{64} << si;
      const int64_t out = planes * expansion(cfg.kind);
      const std::string stage_name = "layer" + std::to_string(si + 1);
      feature_info_.push_back({stage_name, out, int64_t{4} << si});
      if (si >= num_stages) continue;
      const int64_t stride = si == 0 ? 1 : 2;
      nn::Sequential stage;
      for (int64_t bi = 0; bi < cfg.layers[static_cast<size_t>(si)]; ++bi) {
        nn::Sequential down{nullptr};
        if (bi == 0 && (stride != 1 || inplanes != out)) {
          const int64_t k = si == 0 ? 1 : cfg.down_kernel, p = si == 0 ? 0 : cfg.down_padding;
          down = nn::Sequential(conv(inplanes, out, k, stride, p), nn::BatchNorm2d(out));
        }
        stage->push_back(SEBlock(cfg.kind, inplanes, planes, cfg.groups, bi == 0 ? stride : 1, down));
        inplanes = out;
      }
      stages_.push_back(register_module(stage_name, stage));
    }
    if (!args.features_only() && args.num_classes() > 0)
      last_linear_ = register_module("last_linear", nn::Linear(inplanes, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = layer0_->forward(x);
    if (indices.front() == 0) out.push_back(y);
    y = pool0_(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = pool0_(layer0_->forward(x));
    for (auto& stage : stages_) y = stage->forward(y);
    return pool_and_classify(y, last_linear_);
  }

  std::string first_conv() const override { return "layer0.conv1"; }

 private:
  nn::Sequential layer0_{nullptr};
  nn::MaxPool2d pool0_{nullptr};
  std::vector<nn::Sequential> stages_;
  nn::Linear last_linear_{nullptr};
};

}  // namespace

void register_family() {
  auto net = [](BlockKind kind, std::vector<int64_t> layers, int64_t groups = 1) {
    SENetConfig c;
    c.kind = kind;
    c.layers = std::move(layers);
    c.groups = groups;
    return c;
  };
  auto senet154 = net(BlockKind::kSenet154, {3, 8, 36, 3}, 64);
  senet154.inplanes = 128;
  senet154.input_3x3 = true;
  senet154.down_kernel = 3;
  senet154.down_padding = 1;
  const std::vector<std::pair<std::string, SENetConfig>> models = {
      {"legacy_seresnet18", net(BlockKind::kBasic, {2, 2, 2, 2})},
      {"legacy_seresnet34", net(BlockKind::kBasic, {3, 4, 6, 3})},
      {"legacy_seresnet50", net(BlockKind::kResNet, {3, 4, 6, 3})},
      {"legacy_seresnet101", net(BlockKind::kResNet, {3, 4, 23, 3})},
      {"legacy_seresnet152", net(BlockKind::kResNet, {3, 8, 36, 3})},
      {"legacy_senet154", senet154},
      {"legacy_seresnext26_32x4d", net(BlockKind::kResNeXt, {2, 2, 2, 2}, 32)},
      {"legacy_seresnext50_32x4d", net(BlockKind::kResNeXt, {3, 4, 6, 3}, 32)},
      {"legacy_seresnext101_32x4d", net(BlockKind::kResNeXt, {3, 4, 23, 3}, 32)},
  };
  register_configs<SENetImpl>("senet", models);
}

}  // namespace senet
}  // namespace smp::timm
