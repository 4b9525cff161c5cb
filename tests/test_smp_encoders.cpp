// smp's own encoders (resnet*, resnext*, mit_b*): names, depth and output-stride handling, weights
// files and errors. Numbers are checked by the unet_resnet*/unet_mit_* fixtures.
#include <gtest/gtest.h>
#include <smp/encoders.h>
#include <smp/fill.h>
#include <smp/io.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support.h"

using namespace smp::test;

namespace {

TEST(SmpEncoders, NamesAsSmpRegistersThem) {
  EXPECT_EQ(smp::list_smp_encoders(),
            (std::vector<std::string>{"mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5", "resnet101",
                                      "resnet152", "resnet18", "resnet34", "resnet50", "resnext101_32x16d",
                                      "resnext101_32x32d", "resnext101_32x48d", "resnext101_32x4d", "resnext101_32x8d",
                                      "resnext50_32x4d"}));
}

TEST(SmpEncoders, DepthCutsFeaturesNotParameters) {
  auto full = smp::create_encoder(smp::EncoderOptions().name("resnet18"));
  auto shallow = smp::create_encoder(smp::EncoderOptions().name("resnet18").depth(3));
  EXPECT_EQ(shallow->out_channels(), (std::vector<int64_t>{3, 64, 64, 128}));
  EXPECT_EQ(keys(*shallow), keys(*full));  // smp keeps every layer, so checkpoints load at any depth
  auto feats = shallow->forward(torch::zeros({1, 3, 64, 64}));
  ASSERT_EQ(feats.size(), 4u);
  EXPECT_EQ(feats.back().sizes(), (std::vector<int64_t>{1, 128, 8, 8}));

  auto mit = smp::create_encoder(smp::EncoderOptions().name("mit_b0").depth(3));
  EXPECT_EQ(mit->out_channels(), (std::vector<int64_t>{3, 0, 32, 64}));
  auto m = mit->forward(torch::zeros({1, 3, 64, 64}));
  EXPECT_EQ(m[1].sizes(), (std::vector<int64_t>{1, 0, 32, 32}));  // the 0-channel placeholder
  EXPECT_EQ(m[3].sizes(), (std::vector<int64_t>{1, 64, 8, 8}));
}

TEST(SmpEncoders, OutputStrideDilatesResNetOnly) {
  auto os8 = smp::create_encoder(smp::EncoderOptions().name("resnet34").output_stride(8));
  EXPECT_EQ(os8->output_stride(), 8);
  EXPECT_EQ(os8->forward(torch::zeros({1, 3, 64, 64})).back().sizes(), (std::vector<int64_t>{1, 512, 8, 8}));
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet34").output_stride(4)); })
                .find("Output stride should be 16 or 8, got 4"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("mit_b0").output_stride(16)); })
                .find("supports output_stride 32 only"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet18").depth(6)); })
                .find("encoder_depth should be in range [1, 5], got 6"),
            std::string::npos);
}

TEST(SmpEncoders, UnknownNameSuggestsBothKinds) {
  const auto msg = error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet43")); });
  EXPECT_NE(msg.find("Unknown encoder 'resnet43'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet34"), std::string::npos) << msg;
}

// A weights file with the classifier ("fc.*") loads; a 1-channel encoder gets the summed first conv.
TEST(SmpEncoders, WeightsFileLoadsAndAdaptsTheFirstConv) {
  auto source = smp::create_encoder(smp::EncoderOptions().name("resnet18"));
  smp::fill::fill_module(*source);
  auto tensors = smp::io::state_dict(*source);
  tensors["fc.weight"] = torch::zeros({1000, 512});
  tensors["fc.bias"] = torch::zeros({1000});
  const auto path = (std::filesystem::temp_directory_path() / "smp_test_resnet18_weights.safetensors").string();
  smp::io::write_safetensors(path, tensors);
  auto gray = smp::create_encoder(smp::EncoderOptions().name("resnet18").in_channels(1).weights(path));
  const auto got = smp::io::state_dict(*gray);
  EXPECT_TRUE(torch::allclose(got.at("conv1.weight"), tensors.at("conv1.weight").sum(1, true)));
  EXPECT_TRUE(torch::equal(got.at("layer4.1.bn2.running_var"), tensors.at("layer4.1.bn2.running_var")));
  tensors.erase("layer1.0.conv1.weight");
  smp::io::write_safetensors(path, tensors);
  EXPECT_NE(error_of([&] { smp::create_encoder(smp::EncoderOptions().name("resnet18").weights(path)); })
                .find("layer1.0.conv1.weight"),
            std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace

namespace {

// docs/encoders.md lists exactly the encoder names the library accepts (regenerate it with
// scripts/gen-encoders-doc.sh when this fails).
TEST(EncoderDocs, TableListsEveryEncoder) {
  std::ifstream doc(std::string(SMP_TEST_DATA) + "/../../docs/encoders.md");
  ASSERT_TRUE(doc) << "docs/encoders.md not found";
  std::vector<std::string> listed;
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("| ", 0) != 0 || line.rfind("| Encoder", 0) == 0) continue;
    listed.push_back(line.substr(2, line.find(" |", 2) - 2));
  }
  auto want = smp::list_smp_encoders();
  // Models other tests register (family "test") are not library encoders.
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family != "test") want.push_back("tu-" + name);
  std::sort(listed.begin(), listed.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(listed, want);
}

}  // namespace
