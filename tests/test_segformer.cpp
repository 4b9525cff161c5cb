// Segformer: smp's checks and the option table (numbers are in the segformer_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/segformer.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(Segformer, RefusesShallowEncodersAsSmpDoes) {
  auto msg = error_of([] { smp::create_model("Segformer", {"encoder_name=tu-resnet18", "encoder_depth=2"}); });
  EXPECT_NE(msg.find("Encoder depth for Segformer decoder cannot be less than 3, got 2."), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("Segformer", {"encoder_name=tu-resnet18", "decoder_use_norm=false"}); });
  EXPECT_NE(msg.find("Unknown option 'decoder_use_norm'"), std::string::npos) << msg;
}

TEST(Segformer, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("Segformer"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_segmentation_channels", "upsampling"}));
  // smp's save_pretrained config for Segformer (the segformer_mit_b0_fp16 checkpoint's keys).
  auto model = smp::create_model("Segformer", {"encoder_name=mit_b0", "classes=3"});
  EXPECT_EQ(model->config(), nlohmann::json::parse(R"({"activation": null, "aux_params": null, "classes": 3,
      "decoder_segmentation_channels": 256, "encoder_depth": 5, "encoder_name": "mit_b0", "encoder_weights": null,
      "in_channels": 3, "upsampling": 4})"));
  // Mix Transformer's 0-channel 1/2 slot gets no projection: four stages.
  auto names = keys(*model);
  EXPECT_TRUE(has_prefix(names, "decoder.mlp_stage.3.linear.weight"));
  EXPECT_FALSE(has_prefix(names, "decoder.mlp_stage.4"));
  EXPECT_TRUE(has_prefix(names, "decoder.fuse_stage.1.running_mean"));
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::zeros({1, 3, 64, 96})).sizes(), (std::vector<int64_t>{1, 3, 64, 96}));
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({1, 3, 48, 64})); }).find("divisible by 32"),
            std::string::npos);
  auto resnet = smp::Segformer(smp::SegformerOptions().encoder_name("tu-resnet18").decoder_segmentation_channels(16));
  EXPECT_TRUE(has_prefix(keys(*resnet), "decoder.mlp_stage.4.linear.weight"));
}

}  // namespace
