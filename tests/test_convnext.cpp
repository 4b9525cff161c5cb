// ConvNeXt / ConvNeXt-V2 behaviour the conformance fixtures do not cover: the registry, widths of
// every variant, output_stride on other inputs, features_only pruning, classifier heads and errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>
#include "support.h"

using namespace smp::test;

namespace {

using smp::timm::ModelArgs;

TEST(ConvNeXt, RegistersEveryTimmName) {
  // timm.list_models(module='convnext')
  const std::vector<std::string> timm_names = {
      "convnext_atto",      "convnext_atto_ols", "convnext_atto_rms",  "convnext_base",          "convnext_femto",
      "convnext_femto_ols", "convnext_large",    "convnext_large_mlp", "convnext_nano",          "convnext_nano_ols",
      "convnext_pico",      "convnext_pico_ols", "convnext_small",     "convnext_tiny",          "convnext_tiny_hnf",
      "convnext_xlarge",    "convnext_xxlarge",  "convnext_zepto_rms", "convnext_zepto_rms_ols", "convnextv2_atto",
      "convnextv2_base",    "convnextv2_femto",  "convnextv2_huge",    "convnextv2_large",       "convnextv2_nano",
      "convnextv2_pico",    "convnextv2_small",  "convnextv2_tiny",    "test_convnext",          "test_convnext2",
      "test_convnext3"};
  std::vector<std::string> ours;
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family == "convnext") ours.push_back(name);
  EXPECT_EQ(ours, timm_names);
  // Preprocessing of the default pretrained tags.
  EXPECT_EQ(smp::timm::model_entry("convnext_zepto_rms").mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(smp::timm::model_entry("test_convnext2").std, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(smp::timm::model_entry("convnext_xxlarge").mean, (std::vector<double>{0.48145466, 0.4578275, 0.40821073}));
  EXPECT_EQ(smp::timm::model_entry("convnextv2_atto").std, (std::vector<double>{0.229, 0.224, 0.225}));
}

// Stage widths of every variant (timm's feature_info), built cheaply with only the first stage.
TEST(ConvNeXt, StageWidthsOfEveryVariant) {
  const std::map<std::string, std::vector<int64_t>> widths = {
      {"convnext_zepto_rms", {32, 64, 128, 256}},    {"convnext_atto_ols", {40, 80, 160, 320}},
      {"convnext_femto", {48, 96, 192, 384}},        {"convnext_pico_ols", {64, 128, 256, 512}},
      {"convnext_nano_ols", {80, 160, 320, 640}},    {"convnext_tiny_hnf", {96, 192, 384, 768}},
      {"convnext_small", {96, 192, 384, 768}},       {"convnext_base", {128, 256, 512, 1024}},
      {"convnext_large_mlp", {192, 384, 768, 1536}}, {"convnext_xlarge", {256, 512, 1024, 2048}},
      {"convnext_xxlarge", {384, 768, 1536, 3072}},  {"convnextv2_huge", {352, 704, 1408, 2816}},
      {"test_convnext", {24, 32, 48, 64}},           {"test_convnext3", {32, 64, 96, 128}}};
  for (const auto& [name, want] : widths) {
    auto f = smp::timm::create_features(name, ModelArgs().out_indices({0}));
    std::vector<int64_t> chs, red;
    for (const auto& info : f->backbone().feature_info()) {
      chs.push_back(info.num_chs);
      red.push_back(info.reduction);
    }
    EXPECT_EQ(chs, want) << name;
    EXPECT_EQ(red, (std::vector<int64_t>{4, 8, 16, 32})) << name;
    EXPECT_EQ(f->backbone().first_conv(), "stem.0") << name;
    EXPECT_FALSE(has_prefix(keys(*f), "stages_1.")) << name;
  }
}

// Stem layouts: patch conv + norm; two 3x3 convs (a half-width first one for tiered "_ols" stems);
// an activation between them for convnext_zepto_rms_ols (child 1, no parameters).
TEST(ConvNeXt, StemLayouts) {
  auto shape = [](const char* model, const std::string& key) {
    return smp::io::state_dict(*smp::timm::create_features(model, ModelArgs().out_indices({0}))).at(key).sizes().vec();
  };
  EXPECT_EQ(shape("convnext_pico", "stem_0.weight"), (std::vector<int64_t>{64, 3, 4, 4}));
  EXPECT_EQ(shape("convnext_pico_ols", "stem_0.weight"), (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(shape("convnext_pico_ols", "stem_1.weight"), (std::vector<int64_t>{64, 32, 3, 3}));
  EXPECT_EQ(shape("convnext_nano_ols", "stem_0.weight"), (std::vector<int64_t>{80, 3, 3, 3}));
  EXPECT_EQ(shape("convnext_zepto_rms_ols", "stem_2.weight"), (std::vector<int64_t>{32, 32, 3, 3}));
  EXPECT_EQ(shape("convnext_zepto_rms_ols", "stem_3.weight"), (std::vector<int64_t>{32}));
}

TEST(ConvNeXt, OutputStrideDilatesTheLastStages) {
  torch::NoGradGuard no_grad;
  struct Case {
    const char* model;
    int64_t os;
    std::vector<int64_t> reductions;
  };
  for (const auto& c : {Case{"convnext_atto", 16, {4, 8, 16, 16}}, Case{"convnextv2_femto", 8, {4, 8, 8, 8}},
                        Case{"test_convnext3", 8, {4, 8, 8, 8}}, Case{"convnext_zepto_rms_ols", 32, {4, 8, 16, 32}}}) {
    auto f = smp::timm::create_features(c.model, ModelArgs().output_stride(c.os));
    f->eval();
    std::vector<int64_t> red;
    for (const auto& info : f->feature_info()) red.push_back(info.reduction);
    EXPECT_EQ(red, c.reductions) << c.model;
    // Odd sizes exercise the asymmetric 'same' padding of the dilated downsampling convs.
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{64, 96}, {72, 40}}) {
      auto ys = f->forward(torch::randn({1, 3, h, w}));
      ASSERT_EQ(ys.size(), 4u) << c.model;
      for (size_t i = 0; i < ys.size(); ++i) {
        EXPECT_EQ(ys[i].size(1), f->feature_info()[i].num_chs) << c.model << " feature " << i;
        EXPECT_EQ(ys[i].size(2), h / c.reductions[i]) << c.model << " feature " << i;
        EXPECT_EQ(ys[i].size(3), w / c.reductions[i]) << c.model << " feature " << i;
      }
    }
  }
}

TEST(ConvNeXt, FeaturesOnlyKeepsModulesUpToTheLastFeature) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("convnextv2_atto", ModelArgs().out_indices({0, 2}));
  auto ks = keys(*f);
  EXPECT_TRUE(has_prefix(ks, "stem_1."));
  EXPECT_TRUE(has_prefix(ks, "stages_2.blocks.5.mlp.grn."));
  for (const char* gone : {"stages_3.", "head.", "stem."}) EXPECT_FALSE(has_prefix(ks, gone)) << gone;
  EXPECT_EQ(f->to_base_key("stages_2.downsample.1.weight"), "stages.2.downsample.1.weight");
  EXPECT_EQ(f->from_base_key("stem.1.bias"), "stem_1.bias");
  EXPECT_EQ(f->from_base_key("head.fc.weight"), "");

  // The pruned model computes the same maps as the full one.
  expect_features_match_full(*f, "convnextv2_atto");
}

// Logits of full models against timm (tests/data/convnext/classifier_logits.safetensors: smp-fill-v1
// weights, num_classes=10, a [2, 3, 64, 96] "input"): NormMlp heads with LayerNorm2d, SimpleNorm and
// RmsNorm, a norm-first head, channels-last blocks and the test models' GELU-tanh / SiLU.
TEST(ConvNeXt, ClassifierMatchesTimm) {
  expect_classifier_logits("convnext/classifier_logits.safetensors");
}

TEST(ConvNeXt, HeadVariants) {
  torch::NoGradGuard no_grad;
  // Norm first: a top-level norm_pre and a plain classifier.
  auto hnf = keys(*smp::timm::create_model("convnext_tiny_hnf"));
  EXPECT_TRUE(has_prefix(hnf, "norm_pre."));
  EXPECT_TRUE(has_prefix(hnf, "head.fc."));
  EXPECT_FALSE(has_prefix(hnf, "head.norm."));

  // Without classes: pool -> norm only.
  auto model = smp::timm::create_model("test_convnext", ModelArgs().num_classes(0).in_chans(1));
  auto ks = keys(*model);
  EXPECT_TRUE(has_prefix(ks, "head.norm."));
  EXPECT_FALSE(has_prefix(ks, "head.fc."));
  EXPECT_EQ(smp::io::state_dict(*model).at("stem.0.weight").size(1), 1);
  model->eval();
  EXPECT_EQ(model->forward(torch::randn({1, 1, 64, 64})).sizes(), (std::vector<int64_t>{1, 64}));
}

TEST(ConvNeXt, RejectsMisuse) {
  auto f = smp::timm::create_features("convnext_atto", ModelArgs().out_indices({1, 2}));
  auto x = torch::randn({1, 3, 32, 32});
  EXPECT_THROW(f->backbone().forward_intermediates(x, {3}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward_intermediates(x, {2, 1}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward(x), std::logic_error);
  EXPECT_THROW(smp::timm::create_features("convnext_atto", ModelArgs().out_indices({4})), std::invalid_argument);
}

}  // namespace
