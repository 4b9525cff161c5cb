// FPN: smp's checks, the option table and output shapes (numbers are in the fpn_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/fpn.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(FPN, OptionsFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("FPN"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_pyramid_channels", "decoder_segmentation_channels",
                                      "decoder_merge_policy", "decoder_dropout", "decoder_interpolation",
                                      "upsampling"}));
  auto model = smp::FPN(smp::FPNOptions().encoder_name("tu-resnet18").decoder_merge_policy("cat"));
  EXPECT_EQ(model->arch(), "FPN");
  EXPECT_EQ(model->config()["decoder_merge_policy"], "cat");
  EXPECT_EQ(model->config()["upsampling"], 4);
  EXPECT_FALSE(model->config().contains("output_stride"));
}

TEST(FPN, RefusesWhatSmpRefuses) {
  auto error = [](std::vector<std::string> words) {
    words.insert(words.begin(), "encoder_name=tu-resnet18");
    return error_of([&] { smp::create_model("FPN", words); });
  };
  EXPECT_TRUE(contains(error({"encoder_depth=2"}), "Encoder depth for FPN decoder cannot be less than 3, got 2."));
  EXPECT_TRUE(contains(error({"decoder_merge_policy=mean"}), "`merge_policy` must be one of: ['add', 'cat'], got mean"));
  EXPECT_TRUE(contains(error({"decoder_interpolation=linear"}), "decoder_interpolation must be one of"));
  EXPECT_TRUE(contains(error({"decoder_segmentation_channels=40"}), "divisible by 32"));
  EXPECT_TRUE(contains(error({"decoder_dropout=1.5"}), "dropout probability has to be between 0 and 1"));
  EXPECT_TRUE(contains(error_of([] { smp::create_model("FPN", {"encoder_name=mit_b0", "encoder_depth=4"}); }),
                       "Encoder mit_b0 support only encoder_depth=5"));
}

TEST(FPN, OutputShapes) {
  torch::NoGradGuard no_grad;
  auto model = smp::create_model("FPN", {"encoder_name=tu-resnet18", "classes=3", "decoder_merge_policy=cat",
                                         "decoder_segmentation_channels=32", "decoder_pyramid_channels=64",
                                         "aux_params={\"classes\": 2}"});
  model->eval();
  auto out = model->forward_all(torch::zeros({2, 3, 64, 96}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{2, 3, 64, 96}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{2, 2}));
  // The pyramid ends at the input resolution for depth 3, which the default x4 head then overshoots, as in smp.
  auto shallow = smp::create_model("FPN", {"encoder_name=tu-resnet18", "encoder_depth=3",
                                           "decoder_segmentation_channels=32", "decoder_pyramid_channels=32"});
  shallow->eval();
  EXPECT_EQ(shallow->forward(torch::zeros({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 1, 128, 128}));
  EXPECT_TRUE(contains(error_of([&] { model->forward(torch::zeros({1, 3, 48, 48})); }), "divisible by 32"));
}

}  // namespace
