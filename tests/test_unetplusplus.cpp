// UnetPlusPlus: smp's checks and the option table (numbers are in the unetplusplus_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/unetplusplus.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(UnetPlusPlus, RefusesMixTransformerEncodersAsSmpDoes) {
  EXPECT_NE(error_of([] { smp::create_model("UnetPlusPlus", {"encoder_name=mit_b0"}); })
                .find("UnetPlusPlus is not support encoder_name=mit_b0"),
            std::string::npos);
}

TEST(UnetPlusPlus, DecoderChannelsMustMatchTheDepth) {
  auto msg = error_of([] { smp::create_model("UnetPlusPlus", {"encoder_name=tu-resnet18", "encoder_depth=3"}); });
  EXPECT_NE(msg.find("Model depth is 3, but you provide `decoder_channels` for 5 blocks."), std::string::npos) << msg;
  msg = error_of([] {
    smp::create_model("UnetPlusPlus", {"encoder_name=tu-resnet18", "encoder_depth=1", "decoder_channels=[8]"});
  });
  EXPECT_NE(msg.find("at least 2"), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("UnetPlusPlus", {"encoder_name=tu-resnet18", "decoder_attention_type=cbam"}); });
  EXPECT_NE(msg.find("Attention 'cbam' is not implemented"), std::string::npos) << msg;
}

TEST(UnetPlusPlus, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("UnetPlusPlus"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_use_norm", "decoder_channels",
                                      "decoder_attention_type", "decoder_interpolation",
                                      "decoder_use_batchnorm"}));
  auto model = smp::UnetPlusPlus(
      smp::UnetPlusPlusOptions().encoder_name("tu-resnet18").encoder_depth(3).decoder_channels({32, 16, 8}).classes(2));
  EXPECT_EQ(model->arch(), "UnetPlusPlus");
  EXPECT_EQ(model->config()["decoder_channels"], nlohmann::json::parse("[32,16,8]"));
  EXPECT_EQ(model->config()["decoder_interpolation"], "nearest");
  // The nested blocks of a depth-3 decoder.
  auto names = keys(*model);
  for (const char* block : {"x_0_0", "x_0_1", "x_1_1", "x_0_2"})
    EXPECT_TRUE(has_prefix(names, std::string("decoder.blocks.") + block + ".conv1.0.weight")) << block;
  EXPECT_FALSE(has_prefix(names, "decoder.blocks.x_2_2"));
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::zeros({1, 3, 64, 96})).sizes(), (std::vector<int64_t>{1, 2, 64, 96}));
  // smp's default requires_divisible_input_shape: sizes must divide by the output stride (8 here).
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({1, 3, 60, 64})); }).find("divisible by 8"), std::string::npos);
}

TEST(UnetPlusPlus, LoweredEncoderDepthUsesTheFirstDecoderChannels) {
  // xcit has only /16 features: depth 5 is lowered to 4 behind a 0-channel dummy, whose nested blocks are empty.
  auto model = smp::create_model("UnetPlusPlus", {"encoder_name=tu-xcit_nano_12_p16_224",
                                                  "decoder_channels=[32,16,16,8,8]"});
  EXPECT_EQ(model->encoder().depth(), 4);
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::randn({1, 3, 64, 64})).sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

}  // namespace
