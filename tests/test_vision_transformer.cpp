// Vision Transformer / DeiT behaviour the conformance fixtures do not cover: classifier heads
// (token and average pooling, distillation head), other input sizes, pruning and errors.
#include <gtest/gtest.h>
#include <smp/models.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(VisionTransformer, ClassifierLogitsMatchTimm) {
  expect_classifier_logits("vit/classifier_logits.safetensors", {2, 3, 64, 96});
}

TEST(VisionTransformer, DefaultFeaturesAreTheLastThreeBlocks) {
  auto f = smp::timm::create_features("vit_tiny_patch16_224");
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{9, 10, 11}));
  EXPECT_EQ(reductions(*f), (std::vector<int64_t>{16, 16, 16}));
  EXPECT_FALSE(has_prefix(keys(*f), "model.norm."));  // timm prunes the final norm and head
  EXPECT_FALSE(has_prefix(keys(*f), "model.head."));
}

TEST(VisionTransformer, AnyInputSizeDivisibleByThePatch) {
  auto f = smp::timm::create_features("vit_tiny_patch16_224", ModelArgs().out_indices({1, 3}));
  EXPECT_FALSE(has_prefix(keys(*f), "model.blocks.4."));
  expect_features_match_full(*f, "vit_tiny_patch16_224", {1, 3, 48, 80});
  auto maps = f->forward(torch::zeros({1, 3, 48, 80}));
  EXPECT_EQ(maps[1].sizes(), (std::vector<int64_t>{1, 192, 3, 5}));
  EXPECT_NE(error_of([&] { f->forward(torch::zeros({1, 3, 50, 64})); }).find("divisible by the patch size 16"),
            std::string::npos);
}

TEST(VisionTransformer, PretrainedDefaultsFollowTimm) {
  // dinov2 has no classifier by default, CLIP towers project to 512.
  EXPECT_EQ(smp::timm::model_entry("vit_small_patch14_reg4_dinov2").num_classes, 0);
  EXPECT_EQ(smp::timm::model_entry("vit_xsmall_patch16_clip_224").num_classes, 512);
  EXPECT_EQ(smp::timm::model_entry("vit_tiny_patch16_224").mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_NE(error_of([] { smp::timm::create_features("vit_tiny_patch16_224", ModelArgs().output_stride(16)); })
                .find("has no output_stride option"),
            std::string::npos);
}

TEST(VisionTransformer, UnetOnViTGetsAnAdaptedPyramid) {
  auto unet = smp::create_model("Unet", {"encoder_name=tu-vit_tiny_patch16_224", "decoder_channels=[32,16,16,8,8]"});
  unet->eval();
  auto y = unet->forward(torch::zeros({1, 3, 64, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

}  // namespace
