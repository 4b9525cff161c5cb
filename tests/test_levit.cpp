// LeViT behaviour the conformance fixtures do not cover: names, the averaged distillation head,
// the token and conv forms, the fixed input size.
#include <gtest/gtest.h>
#include <smp/models.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(Levit, RegistersEveryTimmName) {
  size_t n = 0;
  for (const auto& name : smp::timm::list_models()) n += smp::timm::model_entry(name).family == "levit" ? 1 : 0;
  EXPECT_EQ(n, 20u);  // timm.list_models(module='levit')
}

TEST(Levit, ClassifierLogitsMatchTimm) {
  expect_classifier_logits("levit/classifier_logits.safetensors", {2, 3, 224, 224});
}

TEST(Levit, ReductionsAndFixedInputSize) {
  auto f = smp::timm::create_features("levit_128s");
  EXPECT_EQ(reductions(*f), (std::vector<int64_t>{16, 32, 64}));
  EXPECT_TRUE(has_prefix(keys(*f), "model.stages.2."));
  auto conv = smp::timm::create_features("levit_conv_128s", ModelArgs().out_indices({0, 1}));
  EXPECT_TRUE(has_prefix(keys(*conv), "stem_conv1."));  // FeatureListNet flattens the stem
  EXPECT_FALSE(has_prefix(keys(*conv), "stages_2."));
  EXPECT_NE(error_of([&] { f->forward(torch::zeros({1, 3, 256, 256})); }).find("needs 224x224 inputs"),
            std::string::npos);
  EXPECT_FALSE(has_prefix(keys(*smp::timm::create_model("levit_256d")), "head_dist."));  // not distilled
}

// The universal encoder maps reductions 16/32/64 to 8/16/32 behind two dummy slots.
TEST(Levit, UnetOnLevitRuns) {
  auto unet = smp::create_model("Unet", {"encoder_name=tu-levit_128s", "decoder_channels=[32,16,16,8,8]"});
  EXPECT_EQ(unet->encoder().out_channels(), (std::vector<int64_t>{3, 0, 0, 128, 256, 384}));
  unet->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(unet->forward(torch::zeros({1, 3, 224, 224})).sizes(), (std::vector<int64_t>{1, 1, 224, 224}));
}

}  // namespace
