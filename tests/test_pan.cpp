// PAN: smp's checks, the option table and output shapes (numbers are in the pan_* fixtures).
#include <gtest/gtest.h>
#include <smp/archs/pan.h>

#include "support.h"

using namespace smp::test;

namespace {

TEST(PAN, OptionsFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("PAN"),
            (std::vector<std::string>{"encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
                                      "activation", "aux_params", "encoder_indices", "encoder_channels",
                                      "drop_path_rate", "drop_rate",
                                      "encoder_output_stride", "decoder_channels", "decoder_interpolation",
                                      "upsampling", "upscale_mode"}));
  auto model = smp::create_model("PAN", {"encoder_name=tu-resnet18"});
  EXPECT_EQ(model->config()["encoder_output_stride"], 16);
  EXPECT_EQ(model->encoder().output_stride(), 16);
  // Depth 4 drops the 1/16 attention block.
  auto shallow = smp::create_model("PAN", {"encoder_name=tu-resnet18", "encoder_depth=4"});
  EXPECT_FALSE(has_prefix(keys(*shallow), "decoder.gau3."));
  EXPECT_TRUE(has_prefix(keys(*shallow), "decoder.gau2."));
  auto old = smp::create_model("PAN", {"encoder_name=tu-resnet18", "upscale_mode=nearest"});
  EXPECT_EQ(old->config()["decoder_interpolation"], "nearest");
  EXPECT_FALSE(old->config().contains("upscale_mode"));
}

TEST(PAN, RefusesWhatSmpRefuses) {
  auto error = [](std::vector<std::string> words) {
    words.insert(words.begin(), "encoder_name=tu-resnet18");
    return error_of([&] { smp::create_model("PAN", words); });
  };
  EXPECT_TRUE(contains(error({"encoder_output_stride=8"}), "PAN support output stride 16 or 32, got 8"));
  EXPECT_TRUE(contains(error({"encoder_depth=2"}), "Encoder depth for PAN decoder cannot be less than 3, got 2."));
  EXPECT_TRUE(contains(error({"decoder_interpolation=cubic"}), "decoder_interpolation must be one of"));
  // smp passes encoder_output_stride to the encoder itself; a second output_stride is a duplicate.
  EXPECT_TRUE(contains(error({"output_stride=16"}), "Unknown option 'output_stride'"));
}

TEST(PAN, OutputShapes) {
  torch::NoGradGuard no_grad;
  auto model = smp::create_model("PAN", {"encoder_name=tu-resnet18", "encoder_output_stride=32", "classes=2",
                                         "decoder_interpolation=nearest", "aux_params={\"classes\": 5}"});
  model->eval();
  // The pyramid attention halves the deepest map three times: 256 / 32 = 8 is the smallest side that works.
  auto out = model->forward_all(torch::zeros({1, 3, 256, 320}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{1, 2, 256, 320}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{1, 5}));
  EXPECT_TRUE(contains(error_of([&] { model->forward(torch::zeros({1, 3, 240, 256})); }), "divisible by 32"));
}

}  // namespace
