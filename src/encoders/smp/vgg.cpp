// smp's torchvision VGG encoders (vgg11 .. vgg19, with and without batch norm) with torchvision's
// parameter names (features.<index>). The features are the activations just before each max pool
// and the last pool's output, so the first one is already 64 channels, not the input.
#include "encoders/smp/common.h"

#include <string>
#include <vector>

namespace smp::smp_encoders::vgg {

namespace nn = torch::nn;

namespace {

constexpr int64_t kMaxPool = 0;  // a max-pool entry in a layer plan

struct VggSpec {
  std::vector<int64_t> plan;
  bool batch_norm;
};

class VggEncoderImpl : public SmpEncoderImpl {
 public:
  VggEncoderImpl(const VggSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o, "'VGG' models do not support dilated mode due to Max Pooling operations for downsampling!");
    features = register_module("features", nn::Sequential());
    std::vector<int64_t> channels;
    int64_t chs = o.in_channels();
    for (const int64_t v : spec.plan) {
      if (v == kMaxPool) {
        // The module before each pool is a feature.
        taps_.push_back(static_cast<int64_t>(features->size()) - 1);
        channels.push_back(chs);
        features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      features->push_back(nn::Conv2d(nn::Conv2dOptions(chs, v, 3).padding(1)));
      if (spec.batch_norm) features->push_back(nn::BatchNorm2d(v));
      features->push_back(nn::ReLU());
      chs = v;
    }
    taps_.push_back(static_cast<int64_t>(features->size()) - 1);
    channels.push_back(chs);
    set_out_channels(channels);
    load_weights(*this, o.weights(), "features.0.weight", drop_prefixes({"classifier"}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> out;
    const auto wanted = static_cast<size_t>(depth_) + 1;
    auto y = x;
    int64_t i = 0;
    for (auto& module : *features) {
      y = module.forward(y);
      if (i++ == taps_[out.size()]) {
        out.push_back(y);
        if (out.size() == wanted) break;
      }
    }
    return out;
  }

 private:
  nn::Sequential features{nullptr};
  std::vector<int64_t> taps_;  // indices in `features` whose outputs are features
};

}  // namespace

void register_group() {
  const std::vector<int64_t> a = {64, kMaxPool, 128, kMaxPool, 256, 256, kMaxPool, 512, 512, kMaxPool,
                                  512, 512, kMaxPool};
  const std::vector<int64_t> b = {64, 64, kMaxPool, 128, 128, kMaxPool, 256, 256, kMaxPool, 512, 512, kMaxPool,
                                  512, 512, kMaxPool};
  const std::vector<int64_t> d = {64, 64, kMaxPool, 128, 128, kMaxPool, 256, 256, 256, kMaxPool,
                                  512, 512, 512, kMaxPool, 512, 512, 512, kMaxPool};
  const std::vector<int64_t> e = {64, 64, kMaxPool, 128, 128, kMaxPool, 256, 256, 256, 256, kMaxPool,
                                  512, 512, 512, 512, kMaxPool, 512, 512, 512, 512, kMaxPool};
  add<VggEncoderImpl>("vgg11", VggSpec{a, false}, {{"imagenet", "ad8b90e1051c38fdbf399cf5016886a1be357390"}});
  add<VggEncoderImpl>("vgg11_bn", VggSpec{a, true}, {{"imagenet", "59757f9215032c9f092977092d57d26a9df7fd9c"}});
  add<VggEncoderImpl>("vgg13", VggSpec{b, false}, {{"imagenet", "1b70ff2580f101a8007a48b51e2b5d1e5925dc42"}});
  add<VggEncoderImpl>("vgg13_bn", VggSpec{b, true}, {{"imagenet", "9be454515193af6612261b7614fe90607e27b143"}});
  add<VggEncoderImpl>("vgg16", VggSpec{d, false}, {{"imagenet", "49d74b799006ee252b86e25acd6f1fd8ac9a99c1"}});
  add<VggEncoderImpl>("vgg16_bn", VggSpec{d, true}, {{"imagenet", "2c186d02fb519e93219a99a1c2af6295aef0bf0d"}});
  add<VggEncoderImpl>("vgg19", VggSpec{e, false}, {{"imagenet", "2853d00d7bca364dbb98be4d6afa347e5aeec1f6"}});
  add<VggEncoderImpl>("vgg19_bn", VggSpec{e, true}, {{"imagenet", "f09a924cb0d201ea6f61601df9559141382271d7"}});
}

}  // namespace smp::smp_encoders::vgg
