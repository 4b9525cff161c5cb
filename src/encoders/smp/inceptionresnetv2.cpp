// smp's InceptionResNetV2 encoder (Cadene's pretrainedmodels port) with its parameter names and smp's
// padding changes, which keep every feature at an exact power-of-two reduction.
#include "encoders/smp/common.h"
#include "encoders/smp/inception_blocks.h"

namespace smp::smp_encoders::inceptionresnetv2 {

namespace nn = torch::nn;

namespace {

using namespace inception_blocks;

// A mixed (reduction) block: the concatenated branches.
class MixedImpl : public BranchesImpl {
 public:
  explicit MixedImpl(std::vector<nn::AnyModule> branches) {
    for (size_t i = 0; i < branches.size(); ++i) add("branch" + std::to_string(i), std::move(branches[i]));
  }
  torch::Tensor forward(const torch::Tensor& x) { return concat(x); }
};
TORCH_MODULE(Mixed);

// The Inception-ResNet blocks 35, 17 and 8: relu(x + scale * conv2d(branches)), without the relu
// for the last block8 (smp replaces its missing relu by an Identity; it still is not applied).
class ResidualImpl : public BranchesImpl {
 public:
  ResidualImpl(std::vector<nn::AnyModule> branches, int64_t concat_channels, int64_t channels, double scale,
               bool relu = true)
      : scale_(scale), relu_(relu) {
    for (size_t i = 0; i < branches.size(); ++i) add("branch" + std::to_string(i), std::move(branches[i]));
    conv2d = register_module("conv2d", nn::Conv2d(nn::Conv2dOptions(concat_channels, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv2d(concat(x)) * scale_ + x;
    return relu_ ? torch::relu(y) : y;
  }

 private:
  double scale_;
  bool relu_;
  nn::Conv2d conv2d{nullptr};
};
TORCH_MODULE(Residual);

Mixed build_mixed_5b() {
  return Mixed(std::vector<nn::AnyModule>{
      any(conv_bn(192, 96, 1)), any(Seq(conv_bn(192, 48, 1), conv_bn(48, 64, 5))),
      any(Seq(conv_bn(192, 64, 1), conv_bn(64, 96, 3), conv_bn(96, 96, 3))),
      any(Seq(nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)),
              conv_bn(192, 64, 1)))});
}

Residual block35() {
  return Residual(
      std::vector<nn::AnyModule>{any(conv_bn(320, 32, 1)), any(Seq(conv_bn(320, 32, 1), conv_bn(32, 32, 3))),
                                 any(Seq(conv_bn(320, 32, 1), conv_bn(32, 48, 3), conv_bn(48, 64, 3)))},
      128, 320, 0.17);
}

Mixed build_mixed_6a() {
  return Mixed(std::vector<nn::AnyModule>{any(conv_bn(320, 384, 3, 2)),
                                          any(Seq(conv_bn(320, 256, 1), conv_bn(256, 256, 3), conv_bn(256, 384, 3, 2))),
                                          any(max_pool())});
}

Residual block17() {
  return Residual(
      std::vector<nn::AnyModule>{any(conv_bn(1088, 192, 1)), any(Seq(conv_bn(1088, 128, 1), BasicConv2d(128, 160, 1, 7),
                                                                     BasicConv2d(160, 192, 7, 1)))},
      384, 1088, 0.10);
}

Mixed build_mixed_7a() {
  return Mixed(std::vector<nn::AnyModule>{
      any(Seq(conv_bn(1088, 256, 1), conv_bn(256, 384, 3, 2))),
      any(Seq(conv_bn(1088, 256, 1), conv_bn(256, 288, 3, 2))),
      any(Seq(conv_bn(1088, 256, 1), conv_bn(256, 288, 3), conv_bn(288, 320, 3, 2))), any(max_pool())});
}

Residual block8(double scale, bool relu) {
  return Residual(
      std::vector<nn::AnyModule>{any(conv_bn(2080, 192, 1)), any(Seq(conv_bn(2080, 192, 1), BasicConv2d(192, 224, 1, 3),
                                                                     BasicConv2d(224, 256, 3, 1)))},
      448, 2080, scale, relu);
}

nn::Sequential repeat(int n, Residual (*block)()) {
  nn::Sequential s;
  for (int i = 0; i < n; ++i) s->push_back(block());
  return s;
}

class InceptionResNetV2EncoderImpl : public SmpEncoderImpl {
 public:
  explicit InceptionResNetV2EncoderImpl(const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o,
                    "InceptionResnetV2 encoder does not support dilated mode due to pooling operation for "
                    "downsampling!");
    conv2d_1a = register_module("conv2d_1a", conv_bn(o.in_channels(), 32, 3, 2));
    conv2d_2a = register_module("conv2d_2a", conv_bn(32, 32, 3));
    conv2d_2b = register_module("conv2d_2b", conv_bn(32, 64, 3));
    maxpool_3a = register_module("maxpool_3a", max_pool());
    conv2d_3b = register_module("conv2d_3b", conv_bn(64, 80, 1));
    conv2d_4a = register_module("conv2d_4a", conv_bn(80, 192, 3));
    maxpool_5a = register_module("maxpool_5a", max_pool());
    mixed_5b = register_module("mixed_5b", build_mixed_5b());
    repeat_0 = register_module("repeat", repeat(10, block35));
    mixed_6a = register_module("mixed_6a", build_mixed_6a());
    repeat_1 = register_module("repeat_1", repeat(20, block17));
    mixed_7a = register_module("mixed_7a", build_mixed_7a());
    repeat_2 = register_module("repeat_2", repeat(9, [] { return block8(0.20, true); }));
    block8_ = register_module("block8", block8(1.0, false));
    conv2d_7b = register_module("conv2d_7b", conv_bn(2080, 1536, 1));
    set_out_channels({3, 64, 192, 320, 1088, 1536});
    load_weights(*this, o.weights(), "conv2d_1a.conv.weight", drop_prefixes({"last_linear."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = conv2d_2b(conv2d_2a(conv2d_1a(x)));
    features.push_back(y);
    if (depth_ >= 2) {
      y = conv2d_4a(conv2d_3b(maxpool_3a(y)));
      features.push_back(y);
    }
    if (depth_ >= 3) {
      y = repeat_0->forward(mixed_5b(maxpool_5a(y)));
      features.push_back(y);
    }
    if (depth_ >= 4) {
      y = repeat_1->forward(mixed_6a(y));
      features.push_back(y);
    }
    if (depth_ >= 5) {
      y = conv2d_7b(block8_(repeat_2->forward(mixed_7a(y))));
      features.push_back(y);
    }
    return features;
  }

 private:
  BasicConv2d conv2d_1a{nullptr}, conv2d_2a{nullptr}, conv2d_2b{nullptr}, conv2d_3b{nullptr}, conv2d_4a{nullptr},
      conv2d_7b{nullptr};
  nn::MaxPool2d maxpool_3a{nullptr}, maxpool_5a{nullptr};
  Mixed mixed_5b{nullptr}, mixed_6a{nullptr}, mixed_7a{nullptr};
  nn::Sequential repeat_0{nullptr}, repeat_1{nullptr}, repeat_2{nullptr};
  Residual block8_{nullptr};
};

}  // namespace

void register_group() {
  // pretrainedmodels' settings for these weights: RGB in [0, 1], mean and std 0.5.
  const auto half = centered_preprocessing();
  add("inceptionresnetv2", Factory([](const EncoderOptions& o) -> std::shared_ptr<SmpEncoderImpl> {
        return std::make_shared<InceptionResNetV2EncoderImpl>(o);
      }),
      {{"imagenet", "120c5afdbb80a1c989db0a7423ebb7a9db9b1e6c", half},
       {"imagenet+background", "3ecf3491658dc0f6a76d69c9d1cb36511b1ee56c", half}});
}

}  // namespace smp::smp_encoders::inceptionresnetv2
