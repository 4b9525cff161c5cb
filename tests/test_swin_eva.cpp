// Swin Transformer and EVA / EVA-02 behaviour the conformance fixtures do not cover: registered
// names, classifier heads at other input sizes, pruning, errors.
#include <gtest/gtest.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(SwinEva, RegisteredNames) {
  EXPECT_EQ(family_size("swin_transformer"), 9u);  // every name of timm's swin_transformer.py
  EXPECT_TRUE(smp::timm::is_model("eva02_tiny_patch14_224"));
  EXPECT_TRUE(smp::timm::is_model("eva02_large_patch14_clip_336"));
  EXPECT_EQ(family_size("eva"), 31u);  // EVA, EVA-02 and the RoPE ViTs of timm's eva.py
}

TEST(SwinEva, SwinLogitsAtAnotherInputSize) {
  expect_classifier_logits("swin/classifier_logits.safetensors", {2, 3, 64, 96});
}

TEST(SwinEva, EvaLogitsMatchTimm) {
  expect_classifier_logits("eva/classifier_logits.safetensors", {2, 3, 112, 112});
}

TEST(SwinEva, SwinFeaturesPruneAndAcceptOtherSizes) {
  auto f = smp::timm::create_features("swin_tiny_patch4_window7_224", ModelArgs().out_indices({0, 1}));
  EXPECT_TRUE(has_prefix(keys(*f), "layers_1."));
  EXPECT_FALSE(has_prefix(keys(*f), "layers_2."));
  expect_features_match_full(*f, "swin_tiny_patch4_window7_224", {1, 3, 72, 104});
  EXPECT_NE(error_of([&] { f->forward(torch::zeros({1, 3, 66, 64})); }).find("divisible by 4"), std::string::npos);
}

TEST(SwinEva, EvaDefaultsFollowTimm) {
  auto f = smp::timm::create_features("eva02_tiny_patch14_224");
  EXPECT_EQ(f->out_indices(), (std::vector<int64_t>{9, 10, 11}));
  EXPECT_EQ(reductions(*f), (std::vector<int64_t>{14, 14, 14}));
  EXPECT_EQ(smp::timm::model_entry("eva02_tiny_patch14_224").num_classes, 0);
}

}  // namespace
