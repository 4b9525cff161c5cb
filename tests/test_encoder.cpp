// The universal timm encoder: selection, dummies, resizing, channel projection and its errors.
#include <gtest/gtest.h>
#include <smp/smp.h>
#include "support.h"

using namespace smp::test;

namespace {

smp::TimmUniversalEncoder encoder(smp::EncoderOptions o) { return smp::TimmUniversalEncoder(o); }

}  // namespace

TEST(UniversalEncoder, LastSelectionResizesToTheStandardReductions) {
  auto enc = encoder(smp::EncoderOptions().name("tu-resnet18").depth(3).indices("last"));
  enc->eval();
  torch::NoGradGuard g;
  auto feats = enc->forward(torch::randn({2, 3, 64, 96}));
  ASSERT_EQ(feats.size(), 4u);
  EXPECT_EQ(enc->out_channels(), (std::vector<int64_t>{3, 128, 256, 512}));
  for (int k = 1; k <= 3; ++k) {
    EXPECT_EQ(feats[k].size(2), 64 >> k);
    EXPECT_EQ(feats[k].size(3), 96 >> k);
  }
  EXPECT_EQ(enc->output_stride(), 8);
}

TEST(UniversalEncoder, UpsamplingIsBilinearAndDownsamplingIsArea) {
  // With a list selection, layer2 (native /8) lands in slot /4 and layer4 (/32) in slot /8.
  auto enc = encoder(smp::EncoderOptions().name("tu-resnet18").depth(3).indices({0, 2, 4}));
  enc->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({1, 3, 64, 64});
  auto native = enc->model().forward(x);
  auto feats = enc->forward(x);
  namespace F = torch::nn::functional;
  auto up = F::interpolate(native[1], F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{16, 16})
                                          .mode(torch::kBilinear)
                                          .align_corners(false));
  EXPECT_TRUE(torch::allclose(feats[2], up));
  EXPECT_TRUE(torch::equal(feats[1], native[0]));

  // xcit: three /16 maps spread to /4, /8, /16; the /8 slot is a 2x bilinear upsample.
  auto xcit = encoder(smp::EncoderOptions().name("tu-xcit_nano_12_p16_224").depth(5));
  xcit->eval();
  auto xf = xcit->forward(torch::randn({1, 3, 64, 64}));
  ASSERT_EQ(xf.size(), 5u);  // x, dummy, /4, /8, /16
  EXPECT_EQ(xf[1].size(1), 0);
  EXPECT_EQ(xf[1].size(2), 32);
  EXPECT_EQ(xf[2].size(2), 16);
  EXPECT_EQ(xf[4].size(2), 4);
}

TEST(UniversalEncoder, OutputStrideCapsTheReductions) {
  // A dilated (os8) resnet keeps its /8 maps in the deeper slots: nothing is resized.
  auto enc = encoder(smp::EncoderOptions().name("tu-resnet18").output_stride(8));
  enc->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({1, 3, 64, 64});
  auto native = enc->model().forward(x);
  auto feats = enc->forward(x);
  for (int k = 3; k <= 5; ++k) EXPECT_TRUE(torch::equal(feats[k], native[k - 1])) << k;
  EXPECT_EQ(enc->output_stride(), 8);
}

TEST(UniversalEncoder, ChannelProjectionOnlyWhereChannelsChange) {
  auto enc = encoder(smp::EncoderOptions().name("tu-resnet18").channels({64, 64, 64, 64, 64}));
  EXPECT_EQ(enc->out_channels(), (std::vector<int64_t>{3, 64, 64, 64, 64, 64}));
  std::set<std::string> keys;
  for (const auto& [k, v] : smp::io::state_dict(*enc))
    if (k.rfind("projections.", 0) == 0) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"projections.2.bias", "projections.2.weight", "projections.3.bias",
                                         "projections.3.weight", "projections.4.bias", "projections.4.weight"}));
  enc->eval();
  auto feats = enc->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_EQ(feats[5].size(1), 64);
}

TEST(UniversalEncoder, ClearErrors) {
  using O = smp::EncoderOptions;
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").depth(3).indices({0, 2, 7})); }).find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").depth(3).indices({0, 2, 2})); }).find("repeated"),
            std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").depth(3).indices({0, 2})); }).find("exactly 3"),
            std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").channels({8, 8})); }).find("encoder_channels has 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").depth(6)); }).find("1..5"), std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").depth(0)); }).find("1..5"), std::string::npos);
  EXPECT_NE(error_of([] { encoder(O().name("tu-resnet18").indices("middle")); }).find("\"first\", \"last\""),
            std::string::npos);
  const auto unknown = error_of([] { smp::create_encoder(O().name("tu-resnet81")); });
  EXPECT_NE(unknown.find("Did you mean: tu-resnet101, tu-resnet18"), std::string::npos) << unknown;
  const auto no_prefix = error_of([] { smp::create_encoder(O().name("xcit_nano_12_p16_224")); });
  EXPECT_NE(no_prefix.find("tu-xcit_nano_12_p16_224"), std::string::npos) << no_prefix;
}

namespace {
// Three maps at /4 (like a uniform-resolution backbone): slots /2, /4, /8 need up, none, and down.
class Uniform4Impl : public smp::timm::BackboneImpl {
 public:
  explicit Uniform4Impl(const smp::timm::ModelArgs& args) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(args.in_chans(), 5, 4).stride(4)));
    for (int i = 0; i < 3; ++i) feature_info_.push_back({"conv", 5, 4});
  }
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, const std::vector<int64_t>& idx) override {
    auto y = conv->forward(x);
    return std::vector<torch::Tensor>(idx.size(), y);
  }
  torch::Tensor forward(const torch::Tensor& x) override { return conv->forward(x); }
  std::string first_conv() const override { return "conv"; }
  torch::nn::Conv2d conv{nullptr};
};
}  // namespace

TEST(UniversalEncoder, DownsamplingIsAdaptiveAveragePooling) {
  smp::timm::register_model({"test_uniform4", "test", [](const smp::timm::ModelArgs& a) {
                               return std::make_shared<Uniform4Impl>(a);
                             }});
  auto enc = encoder(smp::EncoderOptions().name("tu-test_uniform4"));
  EXPECT_EQ(enc->depth(), 3);  // max(3 features, log2(4) = 2)
  enc->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({1, 3, 64, 64});
  auto native = enc->model().forward(x)[0];
  auto feats = enc->forward(x);
  EXPECT_TRUE(torch::equal(feats[2], native));
  EXPECT_TRUE(torch::allclose(feats[3], torch::avg_pool2d(native, 2)));
  EXPECT_EQ(feats[1].size(2), 32);
}
