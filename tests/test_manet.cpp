// MAnet: smp's checks and the option table (numbers are in the manet_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/manet.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(MAnet, DecoderChannelsMustMatchTheDepth) {
  auto msg = error_of([] { smp::create_model("MAnet", {"encoder_name=tu-resnet18", "decoder_channels=[64,32]"}); });
  EXPECT_NE(msg.find("Model depth is 5, but you provide `decoder_channels` for 2 blocks."), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("MAnet", {"encoder_name=tu-resnet18", "decoder_attention_type=scse"}); });
  EXPECT_NE(msg.find("Unknown option 'decoder_attention_type'"), std::string::npos) << msg;
}

TEST(MAnet, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("MAnet"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_use_norm", "decoder_channels", "decoder_pab_channels",
                                      "decoder_interpolation", "decoder_use_batchnorm"}));
  auto model = smp::MAnet(smp::MAnetOptions()
                              .encoder_name("tu-resnet18")
                              .encoder_depth(4)
                              .decoder_channels({32, 16, 16, 8})
                              .decoder_pab_channels(8)
                              .aux_params(smp::AuxParams().classes(3)));
  EXPECT_EQ(model->arch(), "MAnet");
  EXPECT_EQ(model->config()["decoder_pab_channels"], 8);
  auto names = keys(*model);
  EXPECT_TRUE(has_prefix(names, "decoder.center.top_conv.weight"));
  EXPECT_TRUE(has_prefix(names, "decoder.blocks.0.SE_hl.1.weight"));
  // The last level has no skip: a plain block without the attention paths.
  EXPECT_TRUE(has_prefix(names, "decoder.blocks.3.conv1.0.weight"));
  EXPECT_FALSE(has_prefix(names, "decoder.blocks.3.SE_ll"));
  model->eval();
  torch::NoGradGuard no_grad;
  auto out = model->forward_all(torch::zeros({2, 3, 32, 48}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{2, 1, 32, 48}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({1, 3, 40, 48})); }).find("divisible by 16"),
            std::string::npos);
}

}  // namespace
