// DPT: smp's refusals, option table and shapes (numbers are in the dpt_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/dpt.h>

#include "support.h"

using namespace smp::test;

namespace {

smp::DPTOptions tiny() {
  return smp::DPTOptions()
      .encoder_name("tu-vit_tiny_patch16_224")
      .decoder_intermediate_channels({8, 8, 8, 8})
      .decoder_fusion_channels(8);
}

TEST(DPT, RefusesWhatSmpRefuses) {
  EXPECT_NE(error_of([] { smp::DPT(tiny().encoder_name("resnet34")); })
                .find("Only Timm encoders are supported for DPT. Encoder name must start with 'tu-', got resnet34"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::DPT(tiny().decoder_readout("concat")); })
                .find("Invalid decoder readout mode. Must be one of: 'ignore', 'add', 'cat'. Got: concat"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::DPT(tiny().encoder_output_indices({1, 2})); })
                .find("Length of output indices for feature extraction should be equal to the depth"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::DPT(tiny().encoder_output_indices({1, 2, 3, 12})); })
                .find("should be in range [-12, 12), because the model has 12 blocks, got index = 12."),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::DPT(tiny().encoder_depth(13)); })
                .find("Depth of the encoder cannot exceed the number of blocks in the model got 13 depth, model has 12"),
            std::string::npos);
  // Depth 3 with four intermediate widths: the decoder names both lengths.
  EXPECT_NE(error_of([] { smp::DPT(tiny().encoder_depth(3)); }).find("must have the same length"), std::string::npos);
  EXPECT_NE(error_of([] { smp::create_model("DPT", {"encoder_name=tu-vit_tiny_patch16_224", "output_stride=16"}); })
                .find("output_stride"),
            std::string::npos);
}

TEST(DPT, RefusesAPatchSizeItCannotResampleWhereSmpFailsInForward) {
  EXPECT_NE(error_of([] { smp::create_model("DPT", {"encoder_name=tu-eva02_tiny_patch14_224"}); })
                .find("DPT resamples feature 0 from reduction 14 to 4, which needs a whole up- or downsampling factor"),
            std::string::npos);
  // Patch 8 resamples by 2, 1, 1/2 and 1/4.
  auto model = smp::create_model("DPT", {"encoder_name=tu-vit_small_patch8_224", "decoder_intermediate_channels=[8,8,8,8]",
                                         "decoder_fusion_channels=8"});
  torch::NoGradGuard no_grad;
  model->eval();
  EXPECT_EQ(model->forward(torch::randn({1, 3, 64, 64})).sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

TEST(DPT, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("DPT"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "encoder_output_indices",
                                      "decoder_readout", "decoder_intermediate_channels", "decoder_fusion_channels",
                                      "in_channels", "classes", "activation", "aux_params", "dynamic_img_size",
                                      "drop_path_rate", "drop_rate"}));
  auto model = smp::DPT(tiny().classes(3));
  EXPECT_EQ(model->arch(), "DPT");
  EXPECT_EQ(model->config()["decoder_readout"], "cat");
  EXPECT_FALSE(model->config().contains("dynamic_img_size"));  // a **kwargs entry: only when given
  EXPECT_EQ(model->encoder().output_stride(), 16);
  // The whole timm model sits under encoder.model, classifier included, as smp's TimmViTEncoder has it.
  EXPECT_TRUE(model->named_parameters().contains("encoder.model.head.weight"));
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::zeros({2, 3, 64, 96})).sizes(), (std::vector<int64_t>{2, 3, 64, 96}));
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({1, 3, 64, 72})); }).find("divisible by 16"), std::string::npos);
}

TEST(DPT, AcceptsATimmModelNameWithAWeightsTag) {
  auto model = smp::DPT(tiny().encoder_name("tu-vit_tiny_patch16_224.augreg_in21k"));
  EXPECT_EQ(model->config()["encoder_name"], "tu-vit_tiny_patch16_224.augreg_in21k");
}

}  // namespace
