// FastViT (timm's fastvit.py): names, feature selection, classifier heads, and inference
// re-parameterisation of its blocks keeping outputs equal.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/models.h>
#include <smp/reparameterize.h>
#include <smp/timm.h>

#include <algorithm>
#include <fstream>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(FastVit, RegistersEveryFastVitName) {
  EXPECT_EQ(smp::timm::list_models("fastvit*"),
            (std::vector<std::string>{"fastvit_ma36", "fastvit_mci0", "fastvit_mci1", "fastvit_mci2", "fastvit_mci3",
                                      "fastvit_mci4", "fastvit_s12", "fastvit_sa12", "fastvit_sa24", "fastvit_sa36",
                                      "fastvit_t12", "fastvit_t8"}));
  // MobileCLIP towers keep their pretrained configuration: CLIP embedding widths and statistics.
  EXPECT_EQ(smp::timm::model_entry("fastvit_mci0").num_classes, 512);
  EXPECT_EQ(smp::timm::model_entry("fastvit_mci0").std, (std::vector<double>{1.0, 1.0, 1.0}));
  EXPECT_EQ(smp::timm::model_entry("fastvit_mci4").num_classes, 768);
  EXPECT_EQ(smp::timm::model_entry("fastvit_t8").num_classes, 1000);
}

TEST(FastVit, FiveStageModelsSelectTheFirstFourByDefault) {
  auto f = smp::timm::create_features("fastvit_mci3");
  EXPECT_EQ(f->backbone().feature_info().size(), 5u);
  EXPECT_EQ(reductions(*f), (std::vector<int64_t>{4, 8, 16, 32}));
  EXPECT_FALSE(has_prefix(keys(*f), "stages_4.")) << "the unselected last stage is not built";
  auto last = smp::timm::create_features("fastvit_mci3", ModelArgs().out_indices({4}));
  EXPECT_EQ(reductions(*last), (std::vector<int64_t>{64}));
  EXPECT_EQ(last->feature_info()[0].num_chs, 1536);
}

TEST(FastVit, RejectsOtherOutputStrides) {
  EXPECT_NE(error_of([] { smp::timm::create_features("fastvit_t8", ModelArgs().output_stride(16)); })
                .find("output_stride 32 only"),
            std::string::npos);
}

TEST(FastVit, ClassifierLogitsMatchTimm) {
  expect_classifier_logits("fastvit/classifier_logits.safetensors", {2, 3, 64, 64});
}

TEST(FastVit, ReparameterizeKeepsFeatures) {
  torch::NoGradGuard no_grad;
  // sa12: RepMixer stages, attention after a conditional position encoding; mci0: squeeze-excite and
  // GELU in the large-kernel downsampling.
  for (const std::string name : {"fastvit_sa12", "fastvit_mci0"}) {
    auto f = smp::timm::create_features(name);
    const smp::timm::FeaturesImpl& view = *f;
    smp::fill::fill_module(*f, [&view](const std::string& k) { return view.to_base_key(k); });
    f->eval();
    auto x = smp::fill::input("input", {1, 3, 64, 64});
    auto before = f->forward(x);
    EXPECT_GT(smp::timm::reparameterize(*f), 0) << name;
    // timm's re-parameterised names.
    const auto names = keys(*f);
    for (const std::string folded : {"stem_0.reparam_conv.weight", "stem_2.reparam_conv.bias",
                                     "stages_0.blocks.0.token_mixer.reparam_conv.weight",
                                     "stages_1.downsample.proj.0.reparam_conv.weight",
                                     "stages_1.downsample.proj.1.reparam_conv.weight",
                                     "stages_3.pos_emb.reparam_conv.weight"})
      EXPECT_NE(std::find(names.begin(), names.end(), folded), names.end()) << name << ": " << folded;
    for (const std::string gone : {"stem_0.conv_kxk.", "stem_2.identity.", "stages_0.blocks.0.token_mixer.mixer.",
                                   "stages_0.blocks.0.token_mixer.layer_scale.",
                                   "stages_1.downsample.proj.0.large_conv.", "stages_3.pos_emb.pos_enc."})
      EXPECT_FALSE(has_prefix(names, gone)) << name << ": " << gone;
    EXPECT_TRUE(has_prefix(names, "stages_0.blocks.0.mlp.conv.conv.")) << "the MLP has nothing to fold";
    auto after = f->forward(x);
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_LE(relative_max_error(after[i], before[i]), 1e-4) << name << " feature " << i;
    EXPECT_EQ(smp::timm::reparameterize(*f), 0) << "a second call folds nothing more";
  }
}

TEST(FastVit, ReparameterizeKeepsClassifierLogits) {
  torch::NoGradGuard no_grad;
  auto model = smp::timm::create_model("fastvit_mci0", ModelArgs().num_classes(10));
  smp::fill::fill_module(*model);
  model->eval();
  auto x = smp::fill::input("input", {2, 3, 64, 64});
  auto before = model->forward(x);
  smp::timm::reparameterize(*model);
  const auto names = keys(*model);
  EXPECT_TRUE(has_prefix(names, "final_conv.reparam_conv."));
  EXPECT_TRUE(has_prefix(names, "final_conv.se.fc1."));
  EXPECT_LE(relative_max_error(model->forward(x), before), 1e-4);
}

// tests/data/fastvit/mci0_reparameterized_state_dict.txt: "name shape" of every entry of
// timm.utils.reparameterize_model(timm.create_model("fastvit_mci0", num_classes=10)).state_dict().
TEST(FastVit, ReparameterizedStateDictIsTimms) {
  auto model = smp::timm::create_model("fastvit_mci0", ModelArgs().num_classes(10));
  smp::timm::reparameterize(*model);
  std::vector<std::string> got, want;
  for (const auto& [name, value] : smp::io::state_dict(*model)) {
    std::string line = name + " ";
    for (int64_t d = 0; d < value.dim(); ++d) line += (d ? "x" : "") + std::to_string(value.size(d));
    got.push_back(line);
  }
  std::ifstream in(std::string(SMP_TEST_DATA) + "/fastvit/mci0_reparameterized_state_dict.txt");
  for (std::string line; std::getline(in, line);) want.push_back(line);
  ASSERT_FALSE(want.empty());
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(FastVit, UnetOnFastVitRunsAndReparameterizes) {
  auto model = smp::create_model("Unet", {"encoder_name=tu-fastvit_t8", "decoder_channels=[32,16,16,8,8]"});
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::rand({1, 3, 64, 64});
  auto before = model->forward(x);
  EXPECT_EQ(before.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  EXPECT_GT(smp::timm::reparameterize(*model), 0);
  EXPECT_TRUE(torch::allclose(before, model->forward(x), 1e-4, 1e-5));
}

}  // namespace
