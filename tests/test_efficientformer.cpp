// EfficientFormer behaviour the conformance fixtures do not cover: the registry, the real attention
// bias index table (fixtures fill it with zeros), the classifier, l7's all-attention last stage,
// features_only pruning for custom out_indices and argument errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>
#include "support.h"

using namespace smp::test;

namespace {

using smp::timm::ModelArgs;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(EfficientFormer, RegistersEveryTimmName) {
  EXPECT_EQ(smp::timm::list_models("efficientformer_*"),
            (std::vector<std::string>{"efficientformer_l1", "efficientformer_l3", "efficientformer_l7"}));
  EXPECT_EQ(smp::timm::model_entry("efficientformer_l7").family, "efficientformer");
}

TEST(EfficientFormer, AttentionBiasIndexTable) {
  auto model = smp::timm::create_model("efficientformer_l1");
  auto buffers = model->named_buffers();
  auto idxs = buffers["stages.3.blocks.4.token_mixer.attention_bias_idxs"];
  ASSERT_EQ(idxs.sizes(), (std::vector<int64_t>{49, 49}));
  EXPECT_EQ(idxs.scalar_type(), torch::kLong);
  // Tokens 0 = (0, 0), 9 = (1, 2), 48 = (6, 6): index |dy| * 7 + |dx|.
  EXPECT_EQ(idxs[0][9].item<int64_t>(), 1 * 7 + 2);
  EXPECT_EQ(idxs[9][0].item<int64_t>(), 1 * 7 + 2);
  EXPECT_EQ(idxs[9][48].item<int64_t>(), 5 * 7 + 4);
  EXPECT_EQ(idxs.diagonal().abs().sum().item<int64_t>(), 0);
  EXPECT_EQ(idxs.max().item<int64_t>(), 48);
}

// Logits of the full models against timm (tests/data/efficientformer/classifier_logits.safetensors:
// smp-fill-v1 weights, attention_biases times 32, timm's real attention_bias_idxs, num_classes=10,
// a [2, 3, 224, 224] "input"). l7's last stage starts with Flat and has only attention blocks.
TEST(EfficientFormer, ClassifierMatchesTimm) {
  torch::NoGradGuard no_grad;
  auto expected =
      smp::io::read_safetensors(std::string(SMP_TEST_DATA) + "/efficientformer/classifier_logits.safetensors");
  auto x = smp::fill::input("input", {2, 3, 224, 224});
  for (const char* name : {"efficientformer_l1", "efficientformer_l7"}) {
    auto model = smp::timm::create_model(name, ModelArgs().num_classes(10));
    std::map<std::string, torch::Tensor> idxs;
    for (const auto& b : model->named_buffers())
      if (ends_with(b.key(), "attention_bias_idxs")) idxs[b.key()] = b.value().clone();
    smp::fill::fill_module(*model);
    for (auto& b : model->named_buffers())
      if (idxs.count(b.key())) b.value().copy_(idxs[b.key()]);
    for (auto& p : model->named_parameters())
      if (ends_with(p.key(), "attention_biases")) p.value().mul_(32);
    model->eval();
    const auto& want = expected.tensors.at(name);
    auto got = model->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    // The all-zero table (what fixtures hold) changes the logits by ~6e-4, far above this tolerance.
    double err = relative_max_error(got, want);
    EXPECT_LT(err, 2e-5) << name;
  }
}

TEST(EfficientFormer, L7LastStageIsFlatThenAttentionBlocks) {
  auto ks = keys(*smp::timm::create_model("efficientformer_l7"));
  EXPECT_FALSE(has_prefix(ks, "stages.3.blocks.0."));
  EXPECT_TRUE(has_prefix(ks, "stages.3.blocks.1.token_mixer.attention_biases"));
  EXPECT_TRUE(has_prefix(ks, "stages.3.blocks.8.token_mixer.qkv."));
  EXPECT_FALSE(has_prefix(ks, "stages.3.blocks.9."));
  EXPECT_TRUE(has_prefix(ks, "stages.2.blocks.17.mlp.norm2."));
  for (const char* k : {"norm.weight", "head.weight", "head_dist.bias"})
    EXPECT_NE(std::find(ks.begin(), ks.end(), k), ks.end()) << k;
}

TEST(EfficientFormer, FeatureInfoAndDefaults) {
  auto f = smp::timm::create_features("efficientformer_l3");
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{0, 1, 2, 3}));
  const auto& info = f->feature_info();
  ASSERT_EQ(info.size(), 4u);
  EXPECT_EQ(info[3].module, "stages.3");
  EXPECT_EQ(info[3].num_chs, 512);
  EXPECT_EQ(info[3].reduction, 32);
  EXPECT_EQ(f->backbone().first_conv(), "stem.conv1");
  auto ks = keys(*f);
  EXPECT_TRUE(has_prefix(ks, "model.stages.3.blocks.6.token_mixer."));  // 2 pool blocks, Flat, 4 attention
  for (const char* gone : {"model.norm.", "model.head.", "model.head_dist."}) EXPECT_FALSE(has_prefix(ks, gone));
}

TEST(EfficientFormer, EarlyOutIndicesPruneLaterStagesAndAcceptAnyInputSize) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("efficientformer_l1", ModelArgs().out_indices({0, -3}).in_chans(1));
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{0, 1}));
  auto ks = keys(*f);
  EXPECT_TRUE(has_prefix(ks, "model.stages.1.blocks.1."));
  EXPECT_FALSE(has_prefix(ks, "model.stages.2."));
  f->eval();
  auto ys = f->forward(torch::randn({2, 1, 64, 96}));
  ASSERT_EQ(ys.size(), 2u);
  EXPECT_EQ(ys[0].sizes(), (std::vector<int64_t>{2, 48, 16, 24}));
  EXPECT_EQ(ys[1].sizes(), (std::vector<int64_t>{2, 96, 8, 12}));
  EXPECT_THROW(f->backbone().forward_intermediates(torch::randn({1, 1, 64, 64}), {2}), std::invalid_argument);
  EXPECT_THROW(f->backbone().forward(torch::randn({1, 1, 64, 64})), std::logic_error);
}

TEST(EfficientFormer, RejectsUnsupportedArguments) {
  torch::NoGradGuard no_grad;
  auto f = smp::timm::create_features("efficientformer_l1");
  f->eval();
  try {
    f->forward(torch::randn({1, 3, 128, 128}));
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("224x224"), std::string::npos) << e.what();
  }
  try {
    smp::timm::create_features("efficientformer_l3", ModelArgs().output_stride(16));
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("output_stride=16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(smp::timm::create_features("efficientformer_l1", ModelArgs().out_indices({4})), std::invalid_argument);
}

}  // namespace
