// smp's InceptionV4 encoder (Cadene's pretrainedmodels port) with its parameter names and smp's
// padding changes, which keep every feature at an exact power-of-two reduction.
#include "encoders/smp/common.h"
#include "encoders/smp/inception_blocks.h"

namespace smp::smp_encoders::inceptionv4 {

namespace nn = torch::nn;

namespace {

using namespace inception_blocks;
using NamedBranches = std::vector<std::pair<std::string, nn::AnyModule>>;

nn::AvgPool2d avg_pool() {
  return nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false));
}

Branches mixed_3a() {
  return Branches(NamedBranches{{"maxpool", any(max_pool())}, {"conv", any(conv_bn(64, 96, 3, 2))}});
}

Branches mixed_4a() {
  return Branches(NamedBranches{{"branch0", any(Seq(conv_bn(160, 64, 1), conv_bn(64, 96, 3)))},
                                {"branch1", any(Seq(conv_bn(160, 64, 1), BasicConv2d(64, 64, 1, 7),
                                                    BasicConv2d(64, 64, 7, 1), conv_bn(64, 96, 3)))}});
}

Branches mixed_5a() {
  return Branches(NamedBranches{{"conv", any(conv_bn(192, 192, 3, 2))}, {"maxpool", any(max_pool())}});
}

Branches inception_a() {
  return Branches(NamedBranches{{"branch0", any(conv_bn(384, 96, 1))},
                                {"branch1", any(Seq(conv_bn(384, 64, 1), conv_bn(64, 96, 3)))},
                                {"branch2", any(Seq(conv_bn(384, 64, 1), conv_bn(64, 96, 3), conv_bn(96, 96, 3)))},
                                {"branch3", any(Seq(avg_pool(), conv_bn(384, 96, 1)))}});
}

Branches reduction_a() {
  return Branches(
      NamedBranches{{"branch0", any(conv_bn(384, 384, 3, 2))},
                    {"branch1", any(Seq(conv_bn(384, 192, 1), conv_bn(192, 224, 3), conv_bn(224, 256, 3, 2)))},
                    {"branch2", any(max_pool())}});
}

Branches inception_b() {
  return Branches(NamedBranches{
      {"branch0", any(conv_bn(1024, 384, 1))},
      {"branch1", any(Seq(conv_bn(1024, 192, 1), BasicConv2d(192, 224, 1, 7), BasicConv2d(224, 256, 7, 1)))},
      {"branch2", any(Seq(conv_bn(1024, 192, 1), BasicConv2d(192, 192, 7, 1), BasicConv2d(192, 224, 1, 7),
                          BasicConv2d(224, 224, 7, 1), BasicConv2d(224, 256, 1, 7)))},
      {"branch3", any(Seq(avg_pool(), conv_bn(1024, 128, 1)))}});
}

Branches reduction_b() {
  return Branches(NamedBranches{{"branch0", any(Seq(conv_bn(1024, 192, 1), conv_bn(192, 192, 3, 2)))},
                                {"branch1", any(Seq(conv_bn(1024, 256, 1), BasicConv2d(256, 256, 1, 7),
                                                    BasicConv2d(256, 320, 7, 1), conv_bn(320, 320, 3, 2)))},
                                {"branch2", any(max_pool())}});
}

// Its second and third branches fork again into a 1x3 and a 3x1 conv.
class InceptionCImpl : public nn::Module {
 public:
  InceptionCImpl() {
    branch0 = register_module("branch0", conv_bn(1536, 256, 1));
    branch1_0 = register_module("branch1_0", conv_bn(1536, 384, 1));
    branch1_1a = register_module("branch1_1a", BasicConv2d(384, 256, 1, 3));
    branch1_1b = register_module("branch1_1b", BasicConv2d(384, 256, 3, 1));
    branch2_0 = register_module("branch2_0", conv_bn(1536, 384, 1));
    branch2_1 = register_module("branch2_1", BasicConv2d(384, 448, 3, 1));
    branch2_2 = register_module("branch2_2", BasicConv2d(448, 512, 1, 3));
    branch2_3a = register_module("branch2_3a", BasicConv2d(512, 256, 1, 3));
    branch2_3b = register_module("branch2_3b", BasicConv2d(512, 256, 3, 1));
    branch3 = register_module("branch3", nn::Sequential(avg_pool(), conv_bn(1536, 256, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto x1 = branch1_0(x);
    auto x2 = branch2_2(branch2_1(branch2_0(x)));
    return torch::cat({branch0(x), branch1_1a(x1), branch1_1b(x1), branch2_3a(x2), branch2_3b(x2), branch3->forward(x)},
                      1);
  }

 private:
  BasicConv2d branch0{nullptr}, branch1_0{nullptr}, branch1_1a{nullptr}, branch1_1b{nullptr}, branch2_0{nullptr},
      branch2_1{nullptr}, branch2_2{nullptr}, branch2_3a{nullptr}, branch2_3b{nullptr};
  nn::Sequential branch3{nullptr};
};
TORCH_MODULE(InceptionC);

class InceptionV4EncoderImpl : public SmpEncoderImpl {
 public:
  explicit InceptionV4EncoderImpl(const EncoderOptions& o) : SmpEncoderImpl(o) {
    refuse_dilation(o, "InceptionV4 encoder does not support dilated mode due to pooling operation for downsampling!");
    features = register_module("features", nn::Sequential());
    features->push_back(conv_bn(o.in_channels(), 32, 3, 2));
    features->push_back(conv_bn(32, 32, 3));
    features->push_back(conv_bn(32, 64, 3));
    features->push_back(mixed_3a());
    features->push_back(mixed_4a());
    features->push_back(mixed_5a());
    for (int i = 0; i < 4; ++i) features->push_back(inception_a());
    features->push_back(reduction_a());
    for (int i = 0; i < 7; ++i) features->push_back(inception_b());
    features->push_back(reduction_b());
    for (int i = 0; i < 3; ++i) features->push_back(InceptionC());
    set_out_channels({3, 64, 192, 384, 1024, 1536});
    load_weights(*this, o.weights(), "features.0.conv.weight", drop_prefixes({"last_linear."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    // The outputs of these modules of `features` are the features of reduction 2 .. 32.
    static const std::vector<size_t> out_indices = {2, 4, 8, 14, 21};
    std::vector<torch::Tensor> out{x};
    auto y = x;
    size_t i = 0;
    for (auto& module : *features) {
      if (static_cast<int64_t>(out.size()) > depth_) break;
      y = module.forward(y);
      if (i == out_indices[out.size() - 1]) out.push_back(y);
      ++i;
    }
    return out;
  }

 private:
  nn::Sequential features{nullptr};
};

}  // namespace

void register_group() {
  // pretrainedmodels' settings for these weights: RGB in [0, 1], mean and std 0.5.
  const auto half = centered_preprocessing();
  add("inceptionv4", Factory([](const EncoderOptions& o) -> std::shared_ptr<SmpEncoderImpl> {
        return std::make_shared<InceptionV4EncoderImpl>(o);
      }),
      {{"imagenet", "918fb54f07811d82a4ecde3a51156041d0facba9", half},
       {"imagenet+background", "8c2a48e20d2709ee64f8421c61be309f05bfa536", half}});
}

}  // namespace smp::smp_encoders::inceptionv4
