// timm checkpoints into backbones: full-model keys, features-only keys, in_chans adaptation, and a
// checkpoint that does not fit.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/smp.h>

#include <filesystem>

#include "support.h"

using namespace smp::test;

namespace {

namespace fs = std::filesystem;

// A full timm model (classifier included) with smp-fill-v1 weights, saved as timm would.
std::string save_full(const TempDir& dir, const std::string& name, int64_t in_chans = 3) {
  auto full = smp::timm::create_model(name, smp::timm::ModelArgs().in_chans(in_chans));
  smp::fill::fill_module(*full);
  const auto path = dir / (name + "_" + std::to_string(in_chans) + ".safetensors");
  smp::io::write_safetensors(path, smp::io::state_dict(*full));
  return path;
}

std::vector<torch::Tensor> run_filled(smp::timm::FeaturesImpl& f, int64_t in_chans = 3) {
  f.eval();
  torch::NoGradGuard g;
  return f.forward(smp::fill::input("input", {1, in_chans, 64, 64}));
}

}  // namespace

TEST(Checkpoints, FullTimmCheckpointLoadsIntoFeaturesOnlyModels) {
  TempDir dir;
  // ResNet (flat names) and XCiT (getter: "model." prefix, class-attention head pruned).
  for (const std::string name : {"resnet18", "xcit_nano_12_p16_224"}) {
    const auto path = save_full(dir, name);
    auto loaded = smp::timm::create_features(name, smp::timm::ModelArgs().pretrained(path));
    auto filled = smp::timm::create_features(name);
    const smp::timm::FeaturesImpl& f = *filled;
    smp::fill::fill_module(*filled, [&f](const std::string& k) { return f.to_base_key(k); });
    auto a = run_filled(*loaded), b = run_filled(*filled);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << name << " feature " << i;
  }
}

TEST(Checkpoints, FeaturesOnlyKeysLoadToo) {
  TempDir dir;
  auto source = smp::timm::create_features("resnet18", smp::timm::ModelArgs().out_indices({0, 1, 2}));
  smp::fill::fill_module(*source);
  const auto path = dir / "features.safetensors";
  smp::io::write_safetensors(path, smp::io::state_dict(*source));
  auto loaded = smp::timm::create_features("resnet18", smp::timm::ModelArgs().out_indices({0, 1, 2}).pretrained(path));
  auto a = run_filled(*loaded), b = run_filled(*source);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
}

TEST(Checkpoints, ThreeChannelCheckpointAdaptsToOtherInChans) {
  TempDir dir;
  const auto path = save_full(dir, "resnet18");
  auto rgb = smp::io::read_safetensors(path).tensors.at("conv1.weight");
  for (int64_t in_chans : {1, 4}) {
    auto f = smp::timm::create_features("resnet18", smp::timm::ModelArgs().in_chans(in_chans).pretrained(path));
    auto got = smp::io::state_dict(*f).at("conv1.weight");
    EXPECT_TRUE(torch::allclose(got, smp::io::adapt_input_conv(rgb, in_chans))) << in_chans;
  }
}

TEST(Checkpoints, MismatchedCheckpointIsRefusedWithAReport) {
  TempDir dir;
  const auto path = save_full(dir, "resnet34");
  const auto msg = error_of([&] { smp::timm::create_features("resnet18", smp::timm::ModelArgs().pretrained(path)); });
  EXPECT_NE(msg.find("unexpected keys"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer1.2.conv1.weight"), std::string::npos) << msg;
  const auto missing = error_of([&] { smp::timm::create_features("resnet18", smp::timm::ModelArgs().pretrained(dir / "none.safetensors")); });
  EXPECT_NE(missing.find("cannot open"), std::string::npos) << missing;
  // Unet's encoder_weights takes the same files.
  auto unet = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").encoder_weights(save_full(dir, "resnet18")));
  EXPECT_TRUE(torch::equal(smp::io::state_dict(*unet).at("encoder.model.conv1.weight"),
                           smp::io::read_safetensors(dir / "resnet18_3.safetensors").tensors.at("conv1.weight")));
}

// load_checkpoint fills an already built model: a full checkpoint's classifier and the stages the model
// pruned are dropped. ResNet prunes top-level stages, ConvNeXt stages of the flattened "stages", XCiT
// blocks of "blocks" (under "model.") besides its class-attention head.
TEST(Checkpoints, LoadCheckpointFillsPrunedModelsFromFullCheckpoints) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {"resnet18", {0, 1, 2}}, {"convnext_atto", {0, 1}}, {"xcit_nano_12_p16_224", {1, 3}}};
  for (const auto& [name, out_indices] : cases) {
    const auto path = save_full(dir, name);
    const auto full = smp::io::read_safetensors(path).tensors;
    auto features = smp::timm::create_features(name, smp::timm::ModelArgs().out_indices(out_indices));
    smp::timm::load_checkpoint(*features, path);
    const auto own = smp::io::state_dict(*features);
    EXPECT_LT(own.size(), full.size()) << name;  // the checkpoint holds keys the model leaves out
    for (const auto& [key, value] : own)
      EXPECT_TRUE(torch::equal(value, full.at(features->to_base_key(key)))) << name << " " << key;
  }
}

// resnet34 holds every tensor of resnet18 up to layer2, with the same shapes, and more blocks per stage:
// those are refused by name and the model keeps its weights. A features-only checkpoint that stops
// before a stage the model needs is refused too.
TEST(Checkpoints, LoadCheckpointRefusesCheckpointsThatDoNotFit) {
  TempDir dir;
  auto features = smp::timm::create_features("resnet18", smp::timm::ModelArgs().out_indices({0, 1, 2}));
  const auto before = smp::io::state_dict(*features).at("layer1.0.conv1.weight").clone();
  const auto deeper = error_of([&] { smp::timm::load_checkpoint(*features, save_full(dir, "resnet34")); });
  EXPECT_NE(deeper.find("unexpected keys"), std::string::npos) << deeper;
  EXPECT_NE(deeper.find("layer1.2.conv1.weight"), std::string::npos) << deeper;
  EXPECT_TRUE(torch::equal(smp::io::state_dict(*features).at("layer1.0.conv1.weight"), before));

  auto shallow = smp::timm::create_features("resnet18", smp::timm::ModelArgs().out_indices({0, 1}));
  const auto path = dir / "shallow.safetensors";
  smp::io::write_safetensors(path, smp::io::state_dict(*shallow));
  const auto missing = error_of([&] { smp::timm::load_checkpoint(*features, path); });
  EXPECT_NE(missing.find("missing keys"), std::string::npos) << missing;
  EXPECT_NE(missing.find("layer2.0.conv1.weight"), std::string::npos) << missing;
}

// encoder_depth 3 prunes resnet18 after layer2: the encoder takes that pruned model's features-only
// checkpoint as well as the full one.
TEST(Checkpoints, PrunedEncoderTakesFeaturesOnlyAndFullCheckpoints) {
  TempDir dir;
  auto source = smp::timm::create_features("resnet18", smp::timm::ModelArgs().out_indices({0, 1, 2}));
  smp::fill::fill_module(*source);
  const auto features_path = dir / "features.safetensors";
  smp::io::write_safetensors(features_path, smp::io::state_dict(*source));
  for (const auto& path : {features_path, save_full(dir, "resnet18")}) {
    auto unet = smp::Unet(smp::UnetOptions()
                              .encoder_name("tu-resnet18")
                              .encoder_depth(3)
                              .decoder_channels({32, 16, 8})
                              .encoder_weights(path));
    EXPECT_TRUE(torch::equal(smp::io::state_dict(*unet).at("encoder.model.layer2.1.conv2.weight"),
                             smp::io::read_safetensors(path).tensors.at("layer2.1.conv2.weight")))
        << path;
  }
}
