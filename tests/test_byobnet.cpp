// MobileOne (timm's byobnet.py): names, classifier heads, and inference re-parameterisation keeping
// outputs equal.
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

TEST(MobileOne, ClassifierLogitsMatchTimm) {
  expect_classifier_logits("byobnet/classifier_logits.safetensors", {2, 3, 64, 96});
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
