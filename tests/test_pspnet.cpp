// PSPNet: smp's defaults, the option table and output shapes (numbers are in the pspnet_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/pspnet.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(PSPNet, OptionsFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("PSPNet"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "psp_out_channels", "decoder_use_norm", "psp_dropout",
                                      "upsampling", "psp_use_batchnorm"}));
  EXPECT_EQ(smp::PSPNetOptions().encoder_depth(), 3);
  auto model = smp::create_model("PSPNet", {"encoder_name=tu-resnet18", "psp_out_channels=16"});
  EXPECT_EQ(model->config()["encoder_depth"], 3);
  EXPECT_EQ(model->config()["upsampling"], 8);
  EXPECT_EQ(model->encoder().output_stride(), 8);
  // The single-bin branch never gets a batch norm.
  const auto names = keys(*model);
  EXPECT_FALSE(has_prefix(names, "decoder.psp.blocks.0.pool.1.1.running_mean"));
  EXPECT_TRUE(has_prefix(names, "decoder.psp.blocks.0.pool.1.0.bias"));
  EXPECT_TRUE(has_prefix(names, "decoder.psp.blocks.1.pool.1.1.running_mean"));
}

TEST(PSPNet, DeprecatedPspUseBatchnormSetsTheNorm) {
  auto model = smp::create_model("PSPNet", {"encoder_name=tu-resnet18", "psp_use_batchnorm=False"});
  EXPECT_EQ(model->config()["decoder_use_norm"], "identity");
  EXPECT_FALSE(model->config().contains("psp_use_batchnorm"));
  EXPECT_FALSE(has_prefix(keys(*model), "decoder.conv.1.running_mean"));
  EXPECT_TRUE(contains(error_of([] { smp::create_model("PSPNet", {"psp_dropout=2"}); }),
                       "dropout probability has to be between 0 and 1"));
}

TEST(PSPNet, OutputShapes) {
  torch::NoGradGuard no_grad;
  auto model = smp::create_model("PSPNet", {"encoder_name=tu-resnet18", "encoder_depth=5", "upsampling=32",
                                            "classes=4", "aux_params={\"classes\": 3}"});
  model->eval();
  auto out = model->forward_all(torch::zeros({1, 3, 64, 96}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{1, 4, 64, 96}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(contains(error_of([&] { model->forward(torch::zeros({1, 3, 40, 64})); }), "divisible by 32"));
}

}  // namespace
