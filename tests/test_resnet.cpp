// ResNet-family behaviour the conformance fixtures do not cover: the registry, stems and first_conv,
// output_stride bookkeeping of other variants, features_only pruning, the classifier path and errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>
#include "support.h"

using namespace smp::test;

namespace {

using smp::timm::ModelArgs;

TEST(ResNet, RegistersEveryTimmName) {
  // timm.list_models(module='resnet')
  const std::vector<std::string> timm_names = {
      "ecaresnet101d", "ecaresnet101d_pruned", "ecaresnet200d", "ecaresnet269d", "ecaresnet26t", "ecaresnet50d",
      "ecaresnet50d_pruned", "ecaresnet50t", "ecaresnetlight", "ecaresnext26t_32x4d", "ecaresnext50t_32x4d",
      "resnet101", "resnet101c", "resnet101d", "resnet101s", "resnet10t", "resnet14t", "resnet152", "resnet152c",
      "resnet152d", "resnet152s", "resnet18", "resnet18d", "resnet200", "resnet200d", "resnet26", "resnet26d",
      "resnet26t", "resnet34", "resnet34d", "resnet50", "resnet50_gn", "resnet50c", "resnet50d", "resnet50s",
      "resnet50t", "resnetaa101d", "resnetaa34d", "resnetaa50", "resnetaa50d", "resnetblur101d", "resnetblur18",
      "resnetblur50", "resnetblur50d", "resnetrs101", "resnetrs152", "resnetrs200", "resnetrs270", "resnetrs350",
      "resnetrs420", "resnetrs50", "resnext101_32x16d", "resnext101_32x32d", "resnext101_32x4d",
      "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "resnext50d_32x4d", "senet154", "seresnet101",
      "seresnet152", "seresnet152d", "seresnet18", "seresnet200d", "seresnet269d", "seresnet34", "seresnet50",
      "seresnet50t", "seresnetaa50d", "seresnext101_32x4d", "seresnext101_32x8d", "seresnext101_64x4d",
      "seresnext101d_32x8d", "seresnext26d_32x4d", "seresnext26t_32x4d", "seresnext50_32x4d",
      "seresnextaa101d_32x8d", "seresnextaa201d_32x8d", "test_resnet", "wide_resnet101_2", "wide_resnet50_2"};
  std::vector<std::string> ours;
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family == "resnet") ours.push_back(name);
  auto sorted = timm_names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(ours, sorted);
  EXPECT_EQ(smp::timm::model_entry("test_resnet").mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(smp::timm::model_entry("resnet50d").std, (std::vector<double>{0.229, 0.224, 0.225}));
}

TEST(ResNet, FirstConvFollowsTheStem) {
  for (const char* deep : {"resnet18d", "resnet50c", "resnet101s", "resnet10t", "senet154", "resnetrs50"})
    EXPECT_EQ(smp::timm::create_features(deep)->backbone().first_conv(), "conv1.0") << deep;
  for (const char* single : {"resnet18", "resnext50_32x4d", "ecaresnetlight", "resnetblur50"})
    EXPECT_EQ(smp::timm::create_features(single)->backbone().first_conv(), "conv1") << single;
}

// Stem widths: 'c'/'d' (32, 32, 64), 's' (64, 64, 128), 't' (24, 32, 64).
TEST(ResNet, DeepStemWidths) {
  auto shape = [](const char* model, const std::string& key) {
    return smp::io::state_dict(*smp::timm::create_features(model)).at(key).sizes().vec();
  };
  EXPECT_EQ(shape("resnet50c", "conv1.0.weight"), (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(shape("resnet50c", "conv1.6.weight"), (std::vector<int64_t>{64, 32, 3, 3}));
  EXPECT_EQ(shape("resnet50s", "conv1.6.weight"), (std::vector<int64_t>{128, 64, 3, 3}));
  EXPECT_EQ(shape("resnet50s", "layer1.0.downsample.0.weight"), (std::vector<int64_t>{256, 128, 1, 1}));
  EXPECT_EQ(shape("resnet50t", "conv1.0.weight"), (std::vector<int64_t>{24, 3, 3, 3}));
  EXPECT_EQ(shape("resnet50t", "conv1.3.weight"), (std::vector<int64_t>{32, 24, 3, 3}));
  EXPECT_EQ(shape("resnet50t", "layer1.0.downsample.1.weight"), (std::vector<int64_t>{256, 64, 1, 1}));
}

TEST(ResNet, OutputStrideDilatesTheLastStages) {
  torch::NoGradGuard no_grad;
  struct Case {
    const char* model;
    int64_t os;
    std::vector<int64_t> reductions;
  };
  for (const auto& c : {Case{"resnet50", 16, {2, 4, 8, 16, 16}}, Case{"resnext50d_32x4d", 8, {2, 4, 8, 8, 8}},
                        Case{"resnetblur50d", 16, {2, 4, 8, 16, 16}}, Case{"resnet26", 32, {2, 4, 8, 16, 32}}}) {
    auto f = smp::timm::create_features(c.model, ModelArgs().output_stride(c.os));
    f->eval();
    EXPECT_EQ(reductions(*f), c.reductions) << c.model;
    auto ys = f->forward(torch::randn({1, 3, 64, 96}));
    ASSERT_EQ(ys.size(), 5u) << c.model;
    for (size_t i = 0; i < ys.size(); ++i) {
      EXPECT_EQ(ys[i].size(2), 64 / c.reductions[i]) << c.model << " feature " << i;
      EXPECT_EQ(ys[i].size(3), 96 / c.reductions[i]) << c.model << " feature " << i;
      EXPECT_EQ(ys[i].size(1), f->feature_info()[i].num_chs) << c.model << " feature " << i;
    }
  }
}

TEST(ResNet, FeaturesOnlyKeepsModulesUpToTheLastFeature) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("resnet18d", ModelArgs().out_indices({0, 2}));
  auto ks = keys(*f);
  EXPECT_TRUE(has_prefix(ks, "conv1.6."));
  EXPECT_TRUE(has_prefix(ks, "layer2.1."));
  for (const char* gone : {"layer3.", "layer4.", "fc."}) EXPECT_FALSE(has_prefix(ks, gone)) << gone;
  EXPECT_EQ(f->to_base_key("layer2.0.downsample.1.weight"), "layer2.0.downsample.1.weight");

  // The pruned model computes the same maps as the full one.
  expect_features_match_full(*f, "resnet18d");

  // Only the stem.
  auto stem = smp::timm::create_features("resnet34", ModelArgs().out_indices({0}));
  EXPECT_FALSE(has_prefix(keys(*stem), "layer1."));
  stem->eval();
  auto y = stem->forward(torch::randn({1, 3, 32, 32}));
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].sizes(), (std::vector<int64_t>{1, 64, 16, 16}));
}

// Logits of full models against timm (tests/data/resnet/classifier_logits.safetensors: smp-fill-v1
// weights, num_classes=10, a [2, 3, 64, 96] "input"): basic, mixed and pruned widths before the fc.
TEST(ResNet, ClassifierMatchesTimm) {
  expect_classifier_logits("resnet/classifier_logits.safetensors");
}

TEST(ResNet, ClassifierShapesAndHeadlessVariant) {
  torch::NoGradGuard no_grad;
  auto model = smp::timm::create_model("seresnext26t_32x4d");
  model->eval();
  EXPECT_EQ(smp::io::state_dict(*model).at("fc.weight").sizes(), (std::vector<int64_t>{1000, 2048}));
  EXPECT_EQ(model->forward(torch::randn({2, 3, 64, 64})).sizes(), (std::vector<int64_t>{2, 1000}));

  auto headless = smp::timm::create_model("resnet34", ModelArgs().num_classes(0).in_chans(1));
  EXPECT_FALSE(has_prefix(keys(*headless), "fc."));
  EXPECT_EQ(smp::io::state_dict(*headless).at("conv1.weight").size(1), 1);
  headless->eval();
  EXPECT_EQ(headless->forward(torch::randn({1, 1, 40, 40})).sizes(), (std::vector<int64_t>{1, 512}));
}

// timm keeps the unpruned widths in feature_info of its pruned models; the maps have the pruned ones.
TEST(ResNet, PrunedModelsKeepTimmFeatureInfo) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("ecaresnet101d_pruned");
  f->eval();
  EXPECT_EQ(f->feature_info()[4].num_chs, 2048);
  auto ys = f->forward(torch::randn({1, 3, 64, 64}));
  std::vector<int64_t> chs;
  for (const auto& y : ys) chs.push_back(y.size(1));
  EXPECT_EQ(chs, (std::vector<int64_t>{64, 26, 142, 278, 2042}));
  EXPECT_EQ(smp::io::state_dict(*f).at("layer3.22.se.conv.weight").sizes(), (std::vector<int64_t>{1, 1, 5}));
}

TEST(ResNet, RejectsMisuse) {
  auto f = smp::timm::create_features("resnet18", ModelArgs().out_indices({1, 2}));
  auto x = torch::randn({1, 3, 32, 32});
  EXPECT_THROW(f->backbone().forward_intermediates(x, {3}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward_intermediates(x, {2, 1}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward(x), std::logic_error);
  EXPECT_THROW(smp::timm::create_features("resnet18", ModelArgs().out_indices({5})), std::invalid_argument);
  EXPECT_THROW(smp::timm::create_features("resnet18", ModelArgs().output_stride(4)), std::invalid_argument);
}

}  // namespace
