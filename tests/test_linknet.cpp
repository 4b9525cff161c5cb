// Linknet: smp's checks and the option table (numbers are in the linknet_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/linknet.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(Linknet, RefusesMixTransformerEncodersAsSmpDoes) {
  EXPECT_NE(error_of([] { smp::create_model("Linknet", {"encoder_name=mit_b0"}); })
                .find("Encoder `mit_b0` is not supported for Linknet"),
            std::string::npos);
}

TEST(Linknet, OptionsAndConfigFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("Linknet"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "output_stride", "decoder_use_norm", "decoder_use_batchnorm"}));
  EXPECT_NE(error_of([] { smp::create_model("Linknet", {"decoder_channels=[16]"}); }).find("decoder_channels"),
            std::string::npos);
  auto model = smp::Linknet(smp::LinknetOptions().encoder_name("tu-resnet18").encoder_depth(4).classes(2));
  EXPECT_EQ(model->config()["encoder_depth"], 4);
  EXPECT_EQ(model->arch(), "Linknet");
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::zeros({1, 3, 64, 96})).sizes(), (std::vector<int64_t>{1, 2, 64, 96}));
}

}  // namespace
