// MetaFormer (PoolFormer v1/v2, ConvFormer, CAFormer) and MambaOut behaviour the conformance fixtures
// do not cover: registered names, classifier heads, features_only pruning.
#include <gtest/gtest.h>
#include <smp/timm.h>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

TEST(MetaFormer, RegistersEveryTimmName) {
  EXPECT_EQ(family_size("metaformer"), 18u);  // timm.list_models(module='metaformer')
  EXPECT_EQ(family_size("mambaout"), 11u);    // timm.list_models(module='mambaout')
}

// Linear head (PoolFormer), MLP head (CAFormer/ConvFormer), MambaOut's two head kinds.
TEST(MetaFormer, ClassifierLogitsMatchTimm) {
  expect_classifier_logits("metaformer/classifier_logits.safetensors", {2, 3, 64, 96});
}

TEST(MetaFormer, PartialOutIndicesPruneLaterStages) {
  auto ca = smp::timm::create_features("caformer_s18", ModelArgs().out_indices({0, 2}));
  EXPECT_TRUE(has_prefix(keys(*ca), "stages_2."));
  EXPECT_FALSE(has_prefix(keys(*ca), "stages_3."));
  expect_features_match_full(*ca, "caformer_s18", {1, 3, 64, 64});
  auto mo = smp::timm::create_features("mambaout_femto", ModelArgs().out_indices({1}));
  EXPECT_FALSE(has_prefix(keys(*mo), "stages_2."));
  expect_features_match_full(*mo, "mambaout_femto", {1, 3, 64, 96});
  EXPECT_EQ(reductions(*smp::timm::create_features("poolformer_s12")), (std::vector<int64_t>{4, 8, 16, 32}));
}

}  // namespace
