// The universal encoder's slot plan from plain feature lists, no model built. Backbones and expected
// slots are the design document's examples (timm_encoders.md) and the features_info fixtures.
#include <gtest/gtest.h>
#include <smp/smp.h>

#include "encoders/slot_plan.h"
#include "support.h"

using namespace smp::test;
using smp::EncoderOptions;
using smp::detail::plan_slots;
using smp::detail::SlotPlan;
using smp::timm::FeatureInfo;

namespace {

// tu-resnet18 (features_info fixture 01): act1 /2, layer1 /4, layer2 /8, layer3 /16, layer4 /32.
const std::vector<FeatureInfo> kResnet18 = {
    {"act1", 64, 2}, {"layer1", 64, 4}, {"layer2", 128, 8}, {"layer3", 256, 16}, {"layer4", 512, 32}};
const std::vector<int64_t> kResnet18Defaults = {0, 1, 2, 3, 4};

SlotPlan resnet18(const EncoderOptions& request) { return plan_slots("resnet18", kResnet18, kResnet18Defaults, request); }

// One (feature, channels, native reduction, reduction, out channels) row per slot.
std::vector<std::vector<int64_t>> slot_rows(const SlotPlan& plan) {
  std::vector<std::vector<int64_t>> rows;
  for (const auto& s : plan.slots) rows.push_back({s.feature, s.channels, s.native_reduction, s.reduction, s.out_channels});
  return rows;
}

std::vector<bool> projected(const SlotPlan& plan) {
  std::vector<bool> out;
  for (const auto& s : plan.slots) out.push_back(s.projected);
  return out;
}

}  // namespace

TEST(SlotPlan, FiveStageCnnPassesEveryFeatureThrough) {
  const auto plan = resnet18(EncoderOptions());  // fixture 01_resnet18_default
  EXPECT_EQ(plan.depth, 5);
  EXPECT_EQ(plan.candidate_indices, kResnet18Defaults);
  EXPECT_EQ(plan.selected, std::vector<bool>(5, true));
  EXPECT_EQ(plan.out_indices, kResnet18Defaults);
  EXPECT_EQ(slot_rows(plan), (std::vector<std::vector<int64_t>>{
                                 {0, 64, 2, 2, 64}, {1, 64, 4, 4, 64}, {2, 128, 8, 8, 128}, {3, 256, 16, 16, 256},
                                 {4, 512, 32, 32, 512}}));
  EXPECT_FALSE(plan.projections);
}

TEST(SlotPlan, DepthThreeTakesTheFirstFeaturesByDefault) {
  const auto plan = resnet18(EncoderOptions().depth(3));  // fixture 02_resnet18_depth3
  EXPECT_EQ(plan.depth, 3);
  EXPECT_EQ(plan.selected, (std::vector<bool>{true, true, true, false, false}));
  EXPECT_EQ(plan.out_indices, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(slot_rows(plan),
            (std::vector<std::vector<int64_t>>{{0, 64, 2, 2, 64}, {1, 64, 4, 4, 64}, {2, 128, 8, 8, 128}}));
}

TEST(SlotPlan, LastAndListSelectionsMoveFeaturesToTheStandardReductions) {
  const auto last = resnet18(EncoderOptions().depth(3).indices("last"));  // fixture 03_resnet18_depth3_last
  EXPECT_EQ(last.selected, (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(last.out_indices, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(slot_rows(last),
            (std::vector<std::vector<int64_t>>{{0, 128, 8, 2, 128}, {1, 256, 16, 4, 256}, {2, 512, 32, 8, 512}}));

  // fixture 04_resnet18_depth3_list; the order of the entries does not matter.
  const auto list = resnet18(EncoderOptions().depth(3).indices({4, 0, 2}));
  EXPECT_EQ(list.selected, (std::vector<bool>{true, false, true, false, true}));
  EXPECT_EQ(list.out_indices, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(slot_rows(list),
            (std::vector<std::vector<int64_t>>{{0, 64, 2, 2, 64}, {1, 128, 8, 4, 128}, {2, 512, 32, 8, 512}}));
}

TEST(SlotPlan, ChannelsProjectOnlyTheSlotsThatChange) {
  const auto plan = resnet18(EncoderOptions().channels({64, 64, 64, 64, 64}));  // fixture 07_resnet18_channels
  EXPECT_TRUE(plan.projections);
  EXPECT_EQ(projected(plan), (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(slot_rows(plan), (std::vector<std::vector<int64_t>>{
                                 {0, 64, 2, 2, 64}, {1, 64, 4, 4, 64}, {2, 128, 8, 8, 64}, {3, 256, 16, 16, 64},
                                 {4, 512, 32, 32, 64}}));
}

TEST(SlotPlan, TransformerAtOneReductionLowersTheDepthAndAddsADummy) {
  // tu-xcit_tiny_24_p16_224 (fixture 06): 24 blocks of 192 channels at /16, timm's default the last
  // three. The largest reduction 16 = 2^4 sets the depth to 4; the missing /2 map is a dummy and the
  // three /16 maps fill the /4, /8 and /16 slots.
  std::vector<FeatureInfo> blocks;
  for (int i = 0; i < 24; ++i) blocks.push_back({"blocks." + std::to_string(i), 192, 16});
  const auto plan = plan_slots("xcit_tiny_24_p16_224", blocks, {21, 22, 23}, EncoderOptions().depth(5));
  EXPECT_EQ(plan.depth, 4);
  EXPECT_EQ(plan.candidate_indices, (std::vector<int64_t>{21, 22, 23}));
  EXPECT_EQ(plan.out_indices, (std::vector<int64_t>{21, 22, 23}));
  EXPECT_EQ(slot_rows(plan), (std::vector<std::vector<int64_t>>{
                                 {-1, 0, 0, 2, 0}, {0, 192, 16, 4, 192}, {1, 192, 16, 8, 192}, {2, 192, 16, 16, 192}}));

  // A channel list made for the requested depth still fits; the dummy is never projected.
  const auto projected_plan =
      plan_slots("xcit_tiny_24_p16_224", blocks, {21, 22, 23}, EncoderOptions().channels({8, 8, 8, 8, 8}));
  EXPECT_EQ(projected(projected_plan), (std::vector<bool>{false, true, true, true}));
  EXPECT_EQ(projected_plan.slots[0].out_channels, 0);
}

TEST(SlotPlan, FourStagesFromQuarterResolutionGetADummyFirst) {
  // tu-efficientformer_l1 (fixture 05): stages at /4../32 reach depth 5; the /2 slot is a dummy.
  const std::vector<FeatureInfo> stages = {
      {"stages.0", 48, 4}, {"stages.1", 96, 8}, {"stages.2", 224, 16}, {"stages.3", 448, 32}};
  const auto plan = plan_slots("efficientformer_l1", stages, {0, 1, 2, 3}, EncoderOptions());
  EXPECT_EQ(plan.depth, 5);
  EXPECT_EQ(plan.out_indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(slot_rows(plan), (std::vector<std::vector<int64_t>>{{-1, 0, 0, 2, 0},
                                                                {0, 48, 4, 4, 48},
                                                                {1, 96, 8, 8, 96},
                                                                {2, 224, 16, 16, 224},
                                                                {3, 448, 32, 32, 448}}));
}

TEST(SlotPlan, DepthIsTheNumberOfFeaturesWhenThatExceedsTheReductionDepth) {
  // The design document's [4, 4, 4] example: log2(4) = 2 < 3 features, so the depth is 3.
  const std::vector<FeatureInfo> uniform(3, FeatureInfo{"conv", 5, 4});
  const auto plan = plan_slots("uniform4", uniform, {0, 1, 2}, EncoderOptions());
  EXPECT_EQ(plan.depth, 3);
  EXPECT_EQ(slot_rows(plan), (std::vector<std::vector<int64_t>>{{0, 5, 4, 2, 5}, {1, 5, 4, 4, 5}, {2, 5, 4, 8, 5}}));
}

TEST(SlotPlan, ReductionOneFeaturesAreNotCandidates) {
  // A VGG-like list with a full-resolution map first: the table starts at index 1.
  const std::vector<FeatureInfo> vgg = {{"features.3", 64, 1}, {"features.8", 128, 2}, {"features.15", 256, 4}};
  const auto plan = plan_slots("vgg", vgg, {0, 1, 2}, EncoderOptions());
  EXPECT_EQ(plan.candidate_indices, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(plan.out_indices, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(plan.depth, 2);
}

TEST(SlotPlan, InvalidRequestsThrowInvalidArgument) {
  EXPECT_THROW(resnet18(EncoderOptions().depth(3).indices({0, 2})), std::invalid_argument);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().depth(3).indices({0, 2})); }).find("exactly 3"), std::string::npos);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().depth(3).indices({0, 2, 7})); }).find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().depth(3).indices({0, 2, 2})); }).find("repeated"),
            std::string::npos);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().indices("middle")); }).find("\"first\", \"last\""),
            std::string::npos);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().depth(6)); }).find("1..5"), std::string::npos);
  EXPECT_NE(error_of([] { resnet18(EncoderOptions().channels({8, 8})); }).find("encoder_channels has 2"),
            std::string::npos);
  EXPECT_THROW(resnet18(EncoderOptions().channels({64, 64, 0, 64, 64})), std::invalid_argument);
  EXPECT_THROW(plan_slots("vgg_stem", {{"features.3", 64, 1}}, {0}, EncoderOptions()), std::invalid_argument);
}
