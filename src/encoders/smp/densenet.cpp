// smp's torchvision DenseNet encoders (densenet121, densenet161, densenet169, densenet201) with
// torchvision's parameter names. Each transition is split around its feature: the norm and ReLU come
// before it, the 1x1 conv and average pool after; the last feature is norm5 without ReLU.
#include "encoders/smp/common.h"

#include <regex>
#include <string>
#include <vector>

namespace smp::smp_encoders::densenet {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

struct DenseNetSpec {
  int64_t init_features, growth_rate;
  std::vector<int64_t> block_config;
};

// Width of a dense layer's bottleneck, in multiples of the growth rate.
constexpr int64_t kBottleneck = 4;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int64_t in, int64_t growth) {
    norm1 = register_module("norm1", nn::BatchNorm2d(in));
    conv1 = register_module("conv1", conv(in, kBottleneck * growth, 1));
    norm2 = register_module("norm2", nn::BatchNorm2d(kBottleneck * growth));
    conv2 = register_module("conv2", conv(kBottleneck * growth, growth, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return conv2(torch::relu(norm2(conv1(torch::relu(norm1(x))))));
  }

 private:
  nn::BatchNorm2d norm1{nullptr}, norm2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(DenseLayer);

// Each layer sees the block input concatenated with the outputs of all earlier layers.
class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int64_t layers, int64_t in, int64_t growth) {
    for (int64_t i = 0; i < layers; ++i)
      layers_.push_back(register_module("denselayer" + std::to_string(i + 1), DenseLayer(in + i * growth, growth)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> features{x};
    for (auto& layer : layers_) features.push_back(layer(torch::cat(features, 1)));
    return torch::cat(features, 1);
  }

 private:
  std::vector<DenseLayer> layers_;
};
TORCH_MODULE(DenseBlock);

// A transition in the two halves the encoder's forward uses.
class TransitionImpl : public nn::Module {
 public:
  TransitionImpl(int64_t in, int64_t out) {
    norm = register_module("norm", nn::BatchNorm2d(in));
    conv_ = register_module("conv", conv(in, out, 1));
  }
  torch::Tensor before_feature(const torch::Tensor& x) { return torch::relu(norm(x)); }
  torch::Tensor after_feature(const torch::Tensor& x) {
    return F::avg_pool2d(conv_(x), F::AvgPool2dFuncOptions(2).stride(2));
  }

 private:
  nn::BatchNorm2d norm{nullptr};
  nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Transition);

// torchvision's `features`: conv0, norm0, denseblock1, transition1, ..., denseblock4, norm5.
class DenseFeaturesImpl : public nn::Module {
 public:
  DenseFeaturesImpl(const DenseNetSpec& spec, int64_t in_channels) {
    conv0 = register_module("conv0", conv(in_channels, spec.init_features, 7, 2));
    norm0 = register_module("norm0", nn::BatchNorm2d(spec.init_features));
    channels = {3, spec.init_features};
    int64_t chs = spec.init_features;
    const auto n_blocks = spec.block_config.size();
    for (size_t i = 0; i < n_blocks; ++i) {
      const auto index = std::to_string(i + 1);
      blocks.push_back(register_module("denseblock" + index, DenseBlock(spec.block_config[i], chs, spec.growth_rate)));
      chs += spec.block_config[i] * spec.growth_rate;
      channels.push_back(chs);
      if (i + 1 < n_blocks) {
        transitions.push_back(register_module("transition" + index, Transition(chs, chs / 2)));
        chs /= 2;
      }
    }
    norm5 = register_module("norm5", nn::BatchNorm2d(chs));
  }

  nn::Conv2d conv0{nullptr};
  nn::BatchNorm2d norm0{nullptr}, norm5{nullptr};
  // The channels of the encoder's features, the input first.
  std::vector<int64_t> channels;
  std::vector<DenseBlock> blocks;
  std::vector<Transition> transitions;
};
TORCH_MODULE(DenseFeatures);

// smp's load_state_dict: old torchvision checkpoints spell the dense layers' modules "norm.1",
// "conv.2", ...; the classifier is dropped.
std::string rename_key(const std::string& key) {
  static const std::regex old_layer_key(
      R"(^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$)");
  if (key == "classifier.weight" || key == "classifier.bias") return {};
  std::smatch m;
  if (std::regex_match(key, m, old_layer_key)) return m.str(1) + m.str(2);
  return key;
}

class DenseNetEncoderImpl : public SmpEncoderImpl {
 public:
  DenseNetEncoderImpl(const DenseNetSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o, "DenseNet encoders do not support dilated mode due to pooling operation for downsampling!");
    features = register_module("features", DenseFeatures(spec, o.in_channels()));
    set_out_channels(features->channels);
    load_weights(*this, o.weights(), "features.conv0.weight", rename_key);
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> out{x};
    auto& f = *features;
    auto y = torch::relu(f.norm0(f.conv0(x)));
    out.push_back(y);
    if (depth_ >= 2) y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    const auto last = f.blocks.size() - 1;
    for (size_t s = 0; s < f.blocks.size() && static_cast<int64_t>(s) + 2 <= depth_; ++s) {
      if (s > 0) y = f.transitions[s - 1]->after_feature(y);
      y = f.blocks[s](y);
      y = s < last ? f.transitions[s]->before_feature(y) : f.norm5(y);
      out.push_back(y);
    }
    return out;
  }

 private:
  DenseFeatures features{nullptr};
};

}  // namespace

void register_group() {
  add<DenseNetEncoderImpl>("densenet121", DenseNetSpec{64, 32, {6, 12, 24, 16}},
      {{"imagenet", "a17c96896a265b61338f66f61d3887b24f61995a"}});
  add<DenseNetEncoderImpl>("densenet169", DenseNetSpec{64, 32, {6, 12, 32, 32}},
      {{"imagenet", "8facfba9fc72f7750879dac9ac6ceb3ab990de8d"}});
  add<DenseNetEncoderImpl>("densenet201", DenseNetSpec{64, 32, {6, 12, 48, 32}},
      {{"imagenet", "ed5deb355d71659391d46fae5e7587460fbb5f84"}});
  add<DenseNetEncoderImpl>("densenet161", DenseNetSpec{96, 48, {6, 12, 36, 24}},
      {{"imagenet", "9afe0fec51ab2a627141769d97d6f83756d78446"}});
}

}  // namespace smp::smp_encoders::densenet
