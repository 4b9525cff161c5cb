// timm's byobnet.py: MobileOne (names, classifier heads, inference re-parameterisation keeping
// outputs equal) and RegNetZ (names, classifier heads, the universal encoder on the final conv).
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/models.h>
#include <smp/reparameterize.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(MobileOne, RegistersTheMobileOneNames) {
  EXPECT_EQ(smp::timm::list_models("mobileone*"),
            (std::vector<std::string>{"mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4"}));
}

TEST(ByobNet, ClassifierLogitsOfMobileOneAndRegNetZMatchTimm) {
  expect_classifier_logits("byobnet/classifier_logits.safetensors", {2, 3, 64, 96});
}

TEST(RegNetZ, RegistersTheByobnetRegNetZNames) {
  std::vector<std::string> byobnet;
  for (const auto& name : smp::timm::list_models("regnetz_*"))
    if (smp::timm::model_entry(name).family == "byobnet") byobnet.push_back(name);
  EXPECT_EQ(byobnet, (std::vector<std::string>{"regnetz_b16", "regnetz_b16_evos", "regnetz_c16", "regnetz_c16_evos",
                                               "regnetz_d32", "regnetz_d8", "regnetz_d8_evos", "regnetz_e8"}));
  EXPECT_EQ(smp::timm::model_entry("regnetz_d8").mean, (std::vector<double>{0.5, 0.5, 0.5}));
}

TEST(RegNetZ, UnetTakesTheFinalConvAsItsDeepestFeature) {
  auto model = smp::create_model("Unet", {"encoder_name=tu-regnetz_b16", "encoder_depth=5"});
  EXPECT_EQ(model->encoder().out_channels(), (std::vector<int64_t>{3, 32, 48, 96, 192, 1536}));
  torch::NoGradGuard no_grad;
  model->eval();
  EXPECT_EQ(model->forward(torch::randn({1, 3, 64, 64})).sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

TEST(MobileOne, ReparameterizeKeepsOutputs) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"mobileone_s0", "mobileone_s4"}) {
    auto f = smp::timm::create_features(name);
    const smp::timm::FeaturesImpl& view = *f;
    smp::fill::fill_module(*f, [&view](const std::string& k) { return view.to_base_key(k); });
    f->eval();
    auto x = smp::fill::input("input", {1, 3, 64, 64});
    auto before = f->forward(x);
    EXPECT_GT(smp::timm::reparameterize(*f), 0) << name;
    const auto names = keys(*f);
    EXPECT_TRUE(has_prefix(names, "stem.reparam_conv.")) << name;
    EXPECT_FALSE(has_prefix(names, "stem.conv_kxk.")) << name;
    auto after = f->forward(x);
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_LE((before[i] - after[i]).abs().max().item<double>(), 1e-4 * before[i].abs().max().item<double>())
          << name << " feature " << i;
    EXPECT_EQ(smp::timm::reparameterize(*f), 0) << "a second call folds nothing more";
  }
}

TEST(MobileOne, ReparameterizeAWholeSegmentationModel) {
  auto model = smp::create_model("Unet", {"encoder_name=tu-mobileone_s4", "decoder_channels=[32,16,16,8,8]"});
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::rand({1, 3, 64, 64});
  auto before = model->forward(x);
  EXPECT_GT(smp::timm::reparameterize(*model), 0);
  EXPECT_TRUE(torch::allclose(before, model->forward(x), 1e-4, 1e-5));
}

}  // namespace
