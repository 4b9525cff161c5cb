// RegNet behaviour the conformance fixtures do not cover: the registry, the generated stage widths of
// every variant, stems and first_conv, output_stride, features_only pruning, classifier heads, errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>
#include "support.h"

using namespace smp::test;

namespace {

using smp::timm::ModelArgs;

// Stage widths from timm's RegNet._get_stage_args for every configuration.
const std::map<std::string, std::vector<int64_t>>& timm_stage_widths() {
  static const std::map<std::string, std::vector<int64_t>> widths = {
      {"regnetx_002", {24, 56, 152, 368}},        {"regnetx_004", {32, 64, 160, 384}},
      {"regnetx_004_tv", {32, 64, 160, 400}},     {"regnetx_006", {48, 96, 240, 528}},
      {"regnetx_008", {64, 128, 288, 672}},       {"regnetx_016", {72, 168, 408, 912}},
      {"regnetx_032", {96, 192, 432, 1008}},      {"regnetx_040", {80, 240, 560, 1360}},
      {"regnetx_064", {168, 392, 784, 1624}},     {"regnetx_080", {80, 240, 720, 1920}},
      {"regnetx_120", {224, 448, 896, 2240}},     {"regnetx_160", {256, 512, 896, 2048}},
      {"regnetx_320", {336, 672, 1344, 2520}},    {"regnety_002", {24, 56, 152, 368}},
      {"regnety_004", {48, 104, 208, 440}},       {"regnety_006", {48, 112, 256, 608}},
      {"regnety_008", {64, 128, 320, 768}},       {"regnety_008_tv", {64, 144, 320, 784}},
      {"regnety_016", {48, 120, 336, 888}},       {"regnety_032", {72, 216, 576, 1512}},
      {"regnety_040", {128, 192, 512, 1088}},     {"regnety_064", {144, 288, 576, 1296}},
      {"regnety_080", {168, 448, 896, 2016}},     {"regnety_080_tv", {224, 448, 896, 2016}},
      {"regnety_120", {224, 448, 896, 2240}},     {"regnety_160", {224, 448, 1232, 3024}},
      {"regnety_320", {232, 696, 1392, 3712}},    {"regnety_640", {328, 984, 1968, 4920}},
      {"regnety_1280", {528, 1056, 2904, 7392}},  {"regnety_2560", {746, 1492, 4103, 10444}},
      {"regnety_040_sgn", {128, 192, 512, 1088}}, {"regnetv_040", {128, 192, 512, 1088}},
      {"regnetv_064", {144, 288, 576, 1296}},     {"regnetz_005", {16, 40, 104, 256}},
      {"regnetz_040", {48, 104, 240, 528}},       {"regnetz_040_h", {48, 104, 240, 528}}};
  return widths;
}

TEST(RegNet, RegistersEveryTimmName) {
  std::vector<std::string> ours, want;
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family == "regnet") ours.push_back(name);
  for (const auto& [name, w] : timm_stage_widths()) want.push_back(name);  // timm.list_models(module='regnet')
  EXPECT_EQ(ours, want);
}

// Built with only the stem, so even the largest variants are cheap.
TEST(RegNet, StageWidthsOfEveryVariant) {
  for (const auto& [name, want] : timm_stage_widths()) {
    auto f = smp::timm::create_features(name, ModelArgs().out_indices({0}));
    const auto& info = f->backbone().feature_info();
    ASSERT_EQ(info.size(), 5u) << name;
    EXPECT_EQ(info[0].num_chs, 32) << name;
    std::vector<int64_t> chs, red;
    for (size_t i = 1; i < info.size(); ++i) chs.push_back(info[i].num_chs);
    for (const auto& fi : info) red.push_back(fi.reduction);
    EXPECT_EQ(chs, want) << name;
    EXPECT_EQ(red, (std::vector<int64_t>{2, 4, 8, 16, 32})) << name;
    EXPECT_FALSE(has_prefix(keys(*f), "s1.")) << name;  // the stem only
  }
}

TEST(RegNet, StemsAndFirstConv) {
  EXPECT_EQ(smp::timm::create_features("regnetv_040", ModelArgs().out_indices({0}))->backbone().first_conv(), "stem");
  EXPECT_EQ(smp::timm::create_features("regnety_002", ModelArgs().out_indices({0}))->backbone().first_conv(),
            "stem.conv");
  auto sd = smp::io::state_dict(*smp::timm::create_features("regnetv_040", ModelArgs().out_indices({1}).in_chans(2)));
  EXPECT_EQ(sd.at("stem.weight").sizes(), (std::vector<int64_t>{32, 2, 3, 3}));
  // Pre-activation: norm1 before conv1, the shortcut a bare conv.
  EXPECT_EQ(sd.at("s1.b1.norm1.running_var").sizes(), (std::vector<int64_t>{32}));
  EXPECT_EQ(sd.at("s1.b1.downsample.weight").sizes(), (std::vector<int64_t>{128, 32, 1, 1}));
  // GroupNorm variant: same names, no running statistics.
  auto sgn = keys(*smp::timm::create_features("regnety_040_sgn", ModelArgs().out_indices({1})));
  EXPECT_TRUE(has_prefix(sgn, "s1.b1.conv2.bn.weight"));
  EXPECT_FALSE(has_prefix(sgn, "s1.b1.conv2.bn.running_mean"));
}

// RegNet-Z has no projection shortcuts: blocks that change shape are not residual.
TEST(RegNet, RegNetZHasNoProjectionShortcuts) {
  auto ks = keys(*smp::timm::create_model("regnetz_005"));
  EXPECT_FALSE(has_prefix(ks, "s1.b1.downsample"));
  EXPECT_TRUE(has_prefix(ks, "final_conv.conv.weight"));
  EXPECT_EQ(smp::io::state_dict(*smp::timm::create_model("regnetz_005")).at("head.fc.weight").sizes(),
            (std::vector<int64_t>{1000, 1024}));
  EXPECT_FALSE(has_prefix(keys(*smp::timm::create_model("regnetz_040")), "final_conv."));
}

TEST(RegNet, OutputStrideDilatesTheLastStages) {
  torch::NoGradGuard no_grad;
  struct Case {
    const char* model;
    int64_t os;
    std::vector<int64_t> reductions;
  };
  for (const auto& c : {Case{"regnetx_002", 16, {2, 4, 8, 16, 16}}, Case{"regnety_004", 8, {2, 4, 8, 8, 8}},
                        Case{"regnetz_005", 8, {2, 4, 8, 8, 8}}, Case{"regnetv_040", 16, {2, 4, 8, 16, 16}}}) {
    auto f = smp::timm::create_features(c.model, ModelArgs().output_stride(c.os));
    f->eval();
    std::vector<int64_t> red;
    for (const auto& info : f->feature_info()) red.push_back(info.reduction);
    EXPECT_EQ(red, c.reductions) << c.model;
    auto ys = f->forward(torch::randn({1, 3, 64, 96}));
    ASSERT_EQ(ys.size(), 5u) << c.model;
    for (size_t i = 0; i < ys.size(); ++i) {
      EXPECT_EQ(ys[i].size(1), f->feature_info()[i].num_chs) << c.model << " feature " << i;
      EXPECT_EQ(ys[i].size(2), 64 / c.reductions[i]) << c.model << " feature " << i;
      EXPECT_EQ(ys[i].size(3), 96 / c.reductions[i]) << c.model << " feature " << i;
    }
  }
}

TEST(RegNet, FeaturesOnlyKeepsModulesUpToTheLastFeature) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("regnety_002", ModelArgs().out_indices({1, 3}));
  auto ks = keys(*f);
  EXPECT_TRUE(has_prefix(ks, "stem.conv."));
  EXPECT_TRUE(has_prefix(ks, "s3.b4.se.fc2."));
  for (const char* gone : {"s4.", "head.", "final_conv."}) EXPECT_FALSE(has_prefix(ks, gone)) << gone;

  expect_features_match_full(*f, "regnety_002");
}

// Logits of full models against timm (tests/data/regnet/classifier_logits.safetensors: smp-fill-v1
// weights, num_classes=10, a [2, 3, 64, 96] "input"): plain, SE, pre-activation (final activation)
// and RegNet-Z (final 1x1 conv, linear block outputs).
TEST(RegNet, ClassifierMatchesTimm) {
  expect_classifier_logits("regnet/classifier_logits.safetensors");
}

TEST(RegNet, HeadlessClassifier) {
  torch::NoGradGuard no_grad;
  auto model = smp::timm::create_model("regnetx_002", ModelArgs().num_classes(0));
  EXPECT_FALSE(has_prefix(keys(*model), "head."));
  model->eval();
  EXPECT_EQ(model->forward(torch::randn({2, 3, 64, 64})).sizes(), (std::vector<int64_t>{2, 368}));
}

TEST(RegNet, RejectsMisuse) {
  auto f = smp::timm::create_features("regnetx_002", ModelArgs().out_indices({1, 2}));
  auto x = torch::randn({1, 3, 32, 32});
  EXPECT_THROW(f->backbone().forward_intermediates(x, {3}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward_intermediates(x, {2, 1}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward(x), std::logic_error);
  EXPECT_THROW(smp::timm::create_features("regnetx_002", ModelArgs().out_indices({5})), std::invalid_argument);
}

}  // namespace
