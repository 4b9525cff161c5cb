// XCiT behaviour the conformance fixtures do not cover: the registry, other variants' shapes,
// features_only pruning for custom out_indices, the classifier path and argument errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>
#include "support.h"

using namespace smp::test;

namespace {

using smp::timm::ModelArgs;

TEST(Xcit, RegistersEveryTimmName) {
  auto names = smp::timm::list_models("xcit_*");
  EXPECT_EQ(names.size(), 28u);
  for (const char* n : {"xcit_nano_12_p16_224", "xcit_nano_12_p8_384", "xcit_tiny_12_p16_384", "xcit_small_12_p8_224",
                        "xcit_tiny_24_p8_384", "xcit_small_24_p16_224", "xcit_medium_24_p8_224",
                        "xcit_large_24_p16_384", "xcit_large_24_p8_384"}) {
    ASSERT_TRUE(smp::timm::is_model(n)) << n;
    EXPECT_EQ(smp::timm::model_entry(n).family, "xcit");
  }
  EXPECT_FALSE(smp::timm::is_model("xcit_nano_24_p16_224"));
}

TEST(Xcit, FeatureInfoListsEveryBlockAndDefaultsToTheLastThree) {
  auto f = smp::timm::create_features("xcit_small_24_p8_224");
  const auto& all = f->backbone().feature_info();
  ASSERT_EQ(all.size(), 24u);
  EXPECT_EQ(all[0].module, "blocks.0");
  EXPECT_EQ(all[0].num_chs, 384);
  EXPECT_EQ(all[0].reduction, 8);
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{21, 22, 23}));
  EXPECT_EQ(f->backbone().first_conv(), "patch_embed.proj.0.0");
}

TEST(Xcit, FeatureShapesFollowPatchSizeOnNonSquareInputs) {
  torch::NoGradGuard no_grad;
  for (auto [name, reduction, channels] : {std::tuple{"xcit_tiny_12_p8_384", 8, 192},
                                           std::tuple{"xcit_nano_12_p16_224", 16, 128}}) {
    auto f = smp::timm::create_features(name);
    f->eval();
    auto ys = f->forward(torch::randn({2, 3, 64, 96}));
    ASSERT_EQ(ys.size(), 3u) << name;
    for (const auto& y : ys)
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, channels, 64 / reduction, 96 / reduction})) << name;
  }
}

TEST(Xcit, FeaturesOnlyPrunesHeadAndLaterBlocks) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("xcit_nano_12_p16_224", ModelArgs().out_indices({1, -8}));
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{1, 4}));
  auto ks = keys(*f);
  EXPECT_EQ(f->named_parameters().begin()->key(), "model.cls_token");
  EXPECT_TRUE(has_prefix(ks, "model.blocks.4."));
  EXPECT_TRUE(has_prefix(ks, "model.pos_embed.token_projection."));
  for (const char* gone : {"model.blocks.5.", "model.cls_attn_blocks.", "model.norm.", "model.head."})
    EXPECT_FALSE(has_prefix(ks, gone)) << gone;

  // The pruned model computes the same maps as the full one.
  expect_features_match_full(*f, "xcit_nano_12_p16_224");
  auto x = smp::fill::input("input", {1, 3, 48, 64});
  EXPECT_THROW(f->backbone().forward_intermediates(x, {5}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward(x), std::logic_error);
}

// Logits of the full models against timm (tests/data/xcit/classifier_logits.safetensors, from
// smp-fill-v1 weights, num_classes=10 and a [2, 3, 64, 96] "input"). Covers the class-attention
// blocks with and without tokens_norm, which features_only never builds.
TEST(Xcit, ClassifierMatchesTimm) {
  expect_classifier_logits("xcit/classifier_logits.safetensors");
}

TEST(Xcit, FullModelKeysAndHeadlessVariant) {
  auto model = smp::timm::create_model("xcit_nano_12_p8_224", ModelArgs().num_classes(0).in_chans(1));
  auto ks = keys(*model);
  EXPECT_TRUE(has_prefix(ks, "cls_attn_blocks.1.attn.q."));
  EXPECT_TRUE(has_prefix(ks, "norm."));
  EXPECT_FALSE(has_prefix(ks, "head."));
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::randn({1, 1, 32, 32})).sizes(), (std::vector<int64_t>{1, 128}));
}

TEST(Xcit, RejectsUnsupportedArguments) {
  try {
    smp::timm::create_features("xcit_tiny_24_p16_224", ModelArgs().output_stride(16));
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("output_stride=16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(smp::timm::create_features("xcit_nano_12_p16_224", ModelArgs().out_indices({12})),
               std::invalid_argument);
}

}  // namespace
