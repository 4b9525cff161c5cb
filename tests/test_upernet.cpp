// UPerNet: smp's checks and the option table (numbers are in the upernet_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/upernet.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(UPerNet, RefusesShallowEncodersAsSmpDoes) {
  auto msg = error_of([] { smp::create_model("UPerNet", {"encoder_name=tu-resnet18", "encoder_depth=2"}); });
  EXPECT_NE(msg.find("Encoder depth for UPerNet decoder cannot be less than 3, got 2."), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("UPerNet", {"encoder_name=tu-resnet18", "decoder_channels=[64]"}); });
  EXPECT_NE(msg.find("decoder_channels"), std::string::npos) << msg;
}

TEST(UPerNet, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("UPerNet"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_channels", "decoder_use_norm", "upsampling"}));
  auto model = smp::create_model("UPerNet", {"encoder_name=tu-resnet18", "decoder_channels=32", "classes=3"});
  EXPECT_EQ(model->arch(), "UPerNet");
  EXPECT_EQ(model->config()["decoder_channels"], 32);
  EXPECT_EQ(model->config()["upsampling"], 4);
  auto names = keys(*model);
  for (const char* name : {"decoder.feature_norms.3.weight", "decoder.psp.blocks.3.1.0.weight",
                           "decoder.psp.out_conv.1.running_var", "decoder.fpn_lateral_blocks.2.conv_norm_relu.0.weight",
                           "decoder.fpn_conv_blocks.2.0.weight", "decoder.fusion_block.0.weight"})
    EXPECT_TRUE(has_prefix(names, name)) << name;
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::zeros({1, 3, 64, 96})).sizes(), (std::vector<int64_t>{1, 3, 64, 96}));
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({1, 3, 48, 64})); }).find("divisible by 32"),
            std::string::npos);
  // The decoder works at 1/4: upsampling=1 leaves the mask there.
  auto quarter = smp::UPerNet(smp::UPerNetOptions().encoder_name("tu-resnet18").decoder_channels(16).upsampling(1));
  quarter->eval();
  EXPECT_EQ(quarter->forward(torch::zeros({1, 3, 64, 64})).sizes(), (std::vector<int64_t>{1, 1, 16, 16}));
}

}  // namespace
