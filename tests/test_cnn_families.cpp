// VGG, DenseNet, DLA and HRNet behaviour the conformance fixtures do not cover: every timm name is
// registered, classifier heads, features_only pruning with partial out_indices, errors.
#include <gtest/gtest.h>
#include <smp/models.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

std::vector<std::string> family_names(const std::string& family) {
  std::vector<std::string> out;
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family == family) out.push_back(name);
  return out;
}

// timm.list_models(module=...) for each family.
TEST(CnnFamilies, RegisterEveryTimmName) {
  EXPECT_EQ(family_names("vgg"), (std::vector<std::string>{"vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
                                                           "vgg16_bn", "vgg19", "vgg19_bn"}));
  EXPECT_EQ(family_names("densenet"), (std::vector<std::string>{"densenet121", "densenet161", "densenet169",
                                                                "densenet201", "densenet264d", "densenetblur121d"}));
  EXPECT_EQ(family_names("dla"),
            (std::vector<std::string>{"dla102", "dla102x", "dla102x2", "dla169", "dla34", "dla46_c", "dla46x_c",
                                      "dla60", "dla60_res2net", "dla60_res2next", "dla60x", "dla60x_c"}));
  EXPECT_EQ(family_names("hrnet"),
            (std::vector<std::string>{"hrnet_w18", "hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18_ssld",
                                      "hrnet_w30", "hrnet_w32", "hrnet_w40", "hrnet_w44", "hrnet_w48",
                                      "hrnet_w48_ssld", "hrnet_w64"}));
}

TEST(CnnFamilies, ClassifierLogitsMatchTimm) { expect_classifier_logits("cnn/classifier_logits.safetensors"); }

TEST(CnnFamilies, FeatureReductionsAndDefaults) {
  // VGG keeps its full-resolution feature (the universal encoder skips it); DLA's default skips level0.
  EXPECT_EQ(reductions(*smp::timm::create_features("vgg11")), (std::vector<int64_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(reductions(*smp::timm::create_features("dla34")), (std::vector<int64_t>{2, 4, 8, 16, 32}));
  EXPECT_EQ(reductions(*smp::timm::create_features("densenet121")), (std::vector<int64_t>{2, 4, 8, 16, 32}));
  EXPECT_EQ(reductions(*smp::timm::create_features("hrnet_w18_small")), (std::vector<int64_t>{2, 4, 8, 16, 32}));
}

TEST(CnnFamilies, PartialOutIndicesPruneLaterLayers) {
  auto vgg = smp::timm::create_features("vgg11_bn", ModelArgs().out_indices({0, 1}));
  EXPECT_TRUE(has_prefix(keys(*vgg), "features_4."));
  EXPECT_FALSE(has_prefix(keys(*vgg), "features_8."));
  expect_features_match_full(*vgg, "vgg11_bn");

  auto dense = smp::timm::create_features("densenet121", ModelArgs().out_indices({0, 2}));
  EXPECT_TRUE(has_prefix(keys(*dense), "features_denseblock2."));
  EXPECT_FALSE(has_prefix(keys(*dense), "features_transition2."));
  expect_features_match_full(*dense, "densenet121");

  auto dla = smp::timm::create_features("dla34", ModelArgs().out_indices({1, 3}));
  EXPECT_TRUE(has_prefix(keys(*dla), "level3."));
  EXPECT_FALSE(has_prefix(keys(*dla), "level4."));
  expect_features_match_full(*dla, "dla34");

  // timm's HighResolutionNetFeatures always builds every stage; only the classifier head is dropped.
  auto hr = smp::timm::create_features("hrnet_w18_small", ModelArgs().out_indices({0, 4}));
  EXPECT_TRUE(has_prefix(keys(*hr), "incre_modules.3."));
  EXPECT_FALSE(has_prefix(keys(*hr), "final_layer."));
  EXPECT_FALSE(has_prefix(keys(*hr), "downsamp_modules."));
  expect_features_match_full(*hr, "hrnet_w18_small", {1, 3, 64, 64});  // fusion needs H, W % 32 == 0
}

TEST(CnnFamilies, DilationIsRefusedWithTheReason) {
  for (const std::string name : {"vgg11", "densenet121", "dla34", "hrnet_w18_small"})
    EXPECT_NE(error_of([&] { smp::timm::create_features(name, ModelArgs().output_stride(16)); })
                  .find("supports output_stride 32 only"),
              std::string::npos)
        << name;
}

// smp adds Unet's center block only for its own "vgg*" encoder names, not for "tu-vgg*" (the
// unet_vgg11_bn fixture checks the numbers).
TEST(CnnFamilies, UnetOnTimmVggHasNoCenterBlock) {
  auto unet = smp::create_model("Unet", {"encoder_name=tu-vgg11_bn"});
  EXPECT_FALSE(has_prefix(keys(*unet), "decoder.center."));
  EXPECT_TRUE(has_prefix(keys(*unet), "decoder.blocks.4."));
}

}  // namespace
