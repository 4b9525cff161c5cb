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

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("smp_ckpt_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A full timm model (classifier included) with smp-fill-v1 weights, saved as timm would.
std::string save_full(const TempDir& dir, const std::string& name, int64_t in_chans = 3) {
  auto full = smp::timm::create_model(name, smp::timm::ModelArgs().in_chans(in_chans));
  smp::fill::fill_module(*full);
  const auto path = dir.file(name + "_" + std::to_string(in_chans) + ".safetensors");
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
  const auto path = dir.file("features.safetensors");
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
  const auto missing = error_of([&] { smp::timm::create_features("resnet18", smp::timm::ModelArgs().pretrained(dir.file("none.safetensors"))); });
  EXPECT_NE(missing.find("cannot open"), std::string::npos) << missing;
  // Unet's encoder_weights takes the same files.
  auto unet = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").encoder_weights(save_full(dir, "resnet18")));
  EXPECT_TRUE(torch::equal(smp::io::state_dict(*unet).at("encoder.model.conv1.weight"),
                           smp::io::read_safetensors(dir.file("resnet18_3.safetensors")).tensors.at("conv1.weight")));
}
