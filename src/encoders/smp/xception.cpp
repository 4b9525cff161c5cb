// smp's Xception encoder (Cadene's pretrainedmodels port) with its parameter names and smp's padding
// of the two stem convs, which keeps every feature at an exact power-of-two reduction.
#include "encoders/smp/common.h"

namespace smp::smp_encoders::xception {

namespace nn = torch::nn;

namespace {

// Depthwise 3x3 (conv1), then pointwise 1x1; no biases.
class SeparableConv2dImpl : public nn::Module {
 public:
  SeparableConv2dImpl(int64_t in, int64_t out) {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, in, 3).padding(1).groups(in).bias(false)));
    pointwise = register_module("pointwise", nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return pointwise(conv1(x)); }

 private:
  nn::Conv2d conv1{nullptr}, pointwise{nullptr};
};
TORCH_MODULE(SeparableConv2d);

// `reps` (ReLU, separable conv, BN) units, the first (grow_first) or last one changing the width,
// then a stride-2 max pool where strided; plus a residual that is a strided 1x1 conv + BN where the
// shape changes. The `rep` indices follow the module list with the leading ReLU dropped when the
// block does not start with one.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t in, int64_t out, int64_t reps, int64_t stride, bool start_with_relu, bool grow_first) {
    if (out != in || stride != 1) {
      skip = register_module("skip", nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      skipbn = register_module("skipbn", nn::BatchNorm2d(out));
    }
    rep = nn::Sequential();
    const auto unit = [&](int64_t a, int64_t b) {
      if (start_with_relu || !rep->is_empty()) rep->push_back(nn::ReLU());
      rep->push_back(SeparableConv2d(a, b));
      rep->push_back(nn::BatchNorm2d(b));
    };
    if (grow_first) unit(in, out);
    const int64_t width = grow_first ? out : in;
    for (int64_t i = 0; i + 1 < reps; ++i) unit(width, width);
    if (!grow_first) unit(in, out);
    if (stride != 1) rep->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(stride).padding(1)));
    register_module("rep", rep);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = rep->forward(x);
    return y + (skip ? skipbn(skip(x)) : x);
  }

 private:
  nn::Conv2d skip{nullptr};
  nn::BatchNorm2d skipbn{nullptr};
  nn::Sequential rep{nullptr};
};
TORCH_MODULE(Block);

class XceptionEncoderImpl : public SmpEncoderImpl {
 public:
  explicit XceptionEncoderImpl(const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o, "Xception encoder does not support dilated mode due to pooling operation for downsampling!");
    // smp pads both stem convs by 1 (the original has none).
    conv1 = register_module("conv1",
                            nn::Conv2d(nn::Conv2dOptions(o.in_channels(), 32, 3).stride(2).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(32));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(64));
    const auto block = [&](int64_t in, int64_t out, int64_t reps, int64_t stride, bool start_with_relu,
                           bool grow_first) {
      blocks_.push_back(register_module("block" + std::to_string(blocks_.size() + 1),
                                        Block(in, out, reps, stride, start_with_relu, grow_first)));
    };
    block(64, 128, 2, 2, false, true);
    block(128, 256, 2, 2, true, true);
    block(256, 728, 2, 2, true, true);
    for (int i = 0; i < 8; ++i) block(728, 728, 3, 1, true, true);
    block(728, 1024, 2, 2, true, false);
    conv3 = register_module("conv3", SeparableConv2d(1024, 1536));
    bn3 = register_module("bn3", nn::BatchNorm2d(1536));
    conv4 = register_module("conv4", SeparableConv2d(1536, 2048));
    bn4 = register_module("bn4", nn::BatchNorm2d(2048));
    set_out_channels({3, 64, 128, 256, 728, 2048});
    load_weights(*this, o.weights(), "conv1.weight", drop_prefixes({"fc."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = torch::relu(bn2(conv2(torch::relu(bn1(conv1(x))))));
    features.push_back(y);
    if (depth_ >= 2) {
      y = blocks_[0]->forward(y);
      features.push_back(y);
    }
    if (depth_ >= 3) {
      y = blocks_[1]->forward(y);
      features.push_back(y);
    }
    if (depth_ >= 4) {
      for (size_t b = 2; b < 11; ++b) y = blocks_[b]->forward(y);
      features.push_back(y);
    }
    if (depth_ >= 5) {
      y = blocks_[11]->forward(y);
      y = bn4(conv4(torch::relu(bn3(conv3(y)))));
      features.push_back(y);
    }
    return features;
  }

 private:
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr}, bn4{nullptr};
  std::vector<Block> blocks_;
  SeparableConv2d conv3{nullptr}, conv4{nullptr};
};

}  // namespace

void register_group() {
  // pretrainedmodels' settings for these weights: RGB in [0, 1], mean and std 0.5.
  const auto half = centered_preprocessing();
  add("xception", Factory([](const EncoderOptions& o) -> std::shared_ptr<SmpEncoderImpl> {
        return std::make_shared<XceptionEncoderImpl>(o);
      }),
      {{"imagenet", "01cfaf27c11353b1f0c578e7e26d2c000ea91049", half}});
}

}  // namespace smp::smp_encoders::xception
