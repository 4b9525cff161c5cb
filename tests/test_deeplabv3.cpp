// DeepLabV3 and DeepLabV3Plus: smp's checks, the option tables and output shapes (numbers are in the
// deeplabv3*_ fixtures).
#include <gtest/gtest.h>
#include <smp/archs/deeplabv3.h>

#include "support.h"

using namespace smp::test;

namespace {

const std::vector<std::string> kKeys = {"encoder_name",           "encoder_depth",        "encoder_weights",
                                        "in_channels",            "classes",              "activation",
                                        "aux_params",             "encoder_indices",      "encoder_channels",
                                        "drop_path_rate",         "drop_rate",
                                        "encoder_output_stride",  "decoder_channels",     "decoder_atrous_rates",
                                        "decoder_aspp_separable", "decoder_aspp_dropout", "upsampling"};

TEST(DeepLabV3, OptionsFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("DeepLabV3"), kKeys);
  auto model = smp::create_model("DeepLabV3", {"encoder_name=tu-resnet18", "decoder_channels=32"});
  EXPECT_EQ(model->config()["encoder_output_stride"], 8);
  EXPECT_TRUE(model->config()["upsampling"].is_null());
  EXPECT_EQ(model->config()["decoder_atrous_rates"], nlohmann::json({12, 24, 36}));
  EXPECT_EQ(model->encoder().output_stride(), 8);
  auto separable = smp::create_model("DeepLabV3", {"encoder_name=tu-resnet18", "decoder_channels=32",
                                                   "decoder_aspp_separable=True"});
  EXPECT_TRUE(has_prefix(keys(*separable), "decoder.aspp.convs.1.0.1.weight"));
}

TEST(DeepLabV3, RefusesWhatSmpRefuses) {
  auto error = [](std::vector<std::string> words) {
    words.insert(words.begin(), "encoder_name=tu-resnet18");
    return error_of([&] { smp::create_model("DeepLabV3", words); });
  };
  EXPECT_TRUE(contains(error({"encoder_output_stride=32"}), "DeeplabV3 support output stride 8 or 16, got 32."));
  EXPECT_TRUE(contains(error({"decoder_atrous_rates=[6,12]"}), "decoder_atrous_rates must hold 3 dilation rates"));
  EXPECT_TRUE(contains(error({"decoder_aspp_dropout=-0.1"}), "dropout probability has to be between 0 and 1"));
  EXPECT_TRUE(contains(error({"output_stride=16"}), "Unknown option 'output_stride'"));
}

TEST(DeepLabV3, UpsamplingFollowsDepthAndStride) {
  torch::NoGradGuard no_grad;
  auto run = [](std::vector<std::string> words, std::vector<int64_t> shape) {
    words.insert(words.begin(), {"encoder_name=tu-resnet18", "decoder_channels=16"});
    auto model = smp::create_model("DeepLabV3", words);
    model->eval();
    return model->forward(torch::zeros(shape)).sizes().vec();
  };
  EXPECT_EQ(run({}, {1, 3, 64, 96}), (std::vector<int64_t>{1, 1, 64, 96}));
  EXPECT_EQ(run({"encoder_output_stride=16", "classes=3"}, {1, 3, 64, 96}), (std::vector<int64_t>{1, 3, 64, 96}));
  EXPECT_EQ(run({"encoder_depth=3", "encoder_output_stride=16"}, {1, 3, 64, 64}), (std::vector<int64_t>{1, 1, 64, 64}));
  EXPECT_EQ(run({"upsampling=2"}, {1, 3, 64, 64}), (std::vector<int64_t>{1, 1, 16, 16}));
}

TEST(DeepLabV3Plus, OptionsFollowSmp) {
  EXPECT_EQ(smp::architecture_keys("DeepLabV3Plus"), kKeys);
  const smp::DeepLabV3PlusOptions defaults;
  EXPECT_EQ(defaults.encoder_output_stride(), 16);
  EXPECT_TRUE(defaults.decoder_aspp_separable());
  EXPECT_EQ(defaults.upsampling(), 4);
}

TEST(DeepLabV3Plus, RefusesWhatSmpRefuses) {
  auto error = [](std::vector<std::string> words) {
    words.insert(words.begin(), "encoder_name=tu-resnet18");
    return error_of([&] { smp::create_model("DeepLabV3Plus", words); });
  };
  EXPECT_TRUE(contains(error({"encoder_output_stride=32"}), "DeeplabV3Plus support output stride 8 or 16, got 32."));
  EXPECT_TRUE(contains(error({"encoder_depth=2"}),
                       "Encoder depth for DeepLabV3Plus decoder cannot be less than 3, got 2."));
}

TEST(DeepLabV3Plus, OutputShapes) {
  torch::NoGradGuard no_grad;
  for (const auto& words : std::vector<std::vector<std::string>>{
           {}, {"encoder_output_stride=8"}, {"encoder_depth=4"}, {"encoder_depth=3"}}) {
    auto all = words;
    all.insert(all.begin(), {"encoder_name=tu-resnet18", "decoder_channels=16", "classes=2"});
    auto model = smp::create_model("DeepLabV3Plus", all);
    model->eval();
    EXPECT_EQ(model->forward(torch::zeros({1, 3, 64, 96})).sizes(), (std::vector<int64_t>{1, 2, 64, 96}))
        << words.size();
  }
  auto model = smp::create_model("DeepLabV3Plus", {"encoder_name=tu-resnet18", "decoder_channels=16"});
  EXPECT_TRUE(contains(error_of([&] { model->forward(torch::zeros({1, 3, 72, 64})); }), "divisible by 16"));
}

}  // namespace
