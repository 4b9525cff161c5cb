// get_preprocessing_params / preprocess against smp's and timm's values, and the model card that
// save_pretrained writes beside config.json.
//
// Expected values typed from the references: smp's pretrained settings give every one of its own
// encoders' weights ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), RGB, range
// [0, 1]; timm's pretrained cfgs give resnet18 the same, vit_base_patch16_224 the Inception values
// (0.5, 0.5, 0.5) for both, and aimv2 OpenAI CLIP's mean (0.48145466, 0.4578275, 0.40821073) and std
// (0.26862954, 0.26130258, 0.27577711).
#include <gtest/gtest.h>
#include <smp/data.h>
#include <smp/preprocessing.h>
#include <smp/pretrained.h>
#include <smp/smp.h>

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support.h"

using smp::test::error_of;
using smp::test::read_text;
using smp::test::TempDir;
using smp::test::contains;
using smp::test::small_unet;

namespace {

namespace fs = std::filesystem;

const std::vector<double> kImagenetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImagenetStd = {0.229, 0.224, 0.225};

void expect_params(const smp::PreprocessingParams& p, const std::vector<double>& mean, const std::vector<double>& std) {
  EXPECT_EQ(p.input_space, "RGB");
  EXPECT_EQ(p.input_range, (std::array<double, 2>{0.0, 1.0}));
  EXPECT_EQ(p.mean, mean);
  EXPECT_EQ(p.std, std);
}

}  // namespace

TEST(Preprocessing, SmpEncodersTakeTheirWeightsImagenetStatistics) {
  expect_params(smp::get_preprocessing_params("resnet34"), kImagenetMean, kImagenetStd);
  expect_params(smp::get_preprocessing_params("mit_b0"), kImagenetMean, kImagenetStd);
  expect_params(smp::get_preprocessing_params("resnet50", "swsl"), kImagenetMean, kImagenetStd);
  expect_params(smp::get_preprocessing_params("resnext101_32x8d", "instagram"), kImagenetMean, kImagenetStd);
}

TEST(Preprocessing, SmpEncodersRefuseWeightsTheyDoNotHave) {
  // resnet34 has imagenet weights only; resnext101_32x4d has no imagenet weights.
  const auto resnet = error_of([] { smp::get_preprocessing_params("resnet34", "ssl"); });
  EXPECT_TRUE(contains(resnet, "'ssl'") && contains(resnet, "imagenet")) << resnet;
  const auto resnext = error_of([] { smp::get_preprocessing_params("resnext101_32x4d"); });
  EXPECT_TRUE(contains(resnext, "'imagenet'") && contains(resnext, "ssl, swsl")) << resnext;
  EXPECT_THROW(smp::get_preprocessing_params("resnet34", "ssl"), std::invalid_argument);
}

TEST(Preprocessing, TimmEncodersTakeTheTimmModelsStatistics) {
  expect_params(smp::get_preprocessing_params("tu-resnet18"), kImagenetMean, kImagenetStd);
  expect_params(smp::get_preprocessing_params("tu-vit_base_patch16_224"), {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
  expect_params(smp::get_preprocessing_params("tu-aimv2_large_patch14_224"), {0.48145466, 0.4578275, 0.40821073},
                {0.26862954, 0.26130258, 0.27577711});
  // As in smp, `pretrained` does not apply to timm encoders; a timm tag names their weights.
  expect_params(smp::get_preprocessing_params("tu-vit_base_patch16_224", "ssl"), {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
  expect_params(smp::get_preprocessing_params("tu-resnet18.a1_in1k"), kImagenetMean, kImagenetStd);
  EXPECT_THROW(smp::get_preprocessing_params("tu-resnet18.no_such_tag"), std::invalid_argument);
}

TEST(Preprocessing, UnknownEncodersGetAOneLineError) {
  EXPECT_THROW(smp::get_preprocessing_params("resnet35"), std::invalid_argument);
  const auto smp_name = error_of([] { smp::get_preprocessing_params("resnet35"); });
  EXPECT_TRUE(contains(smp_name, "Unknown encoder 'resnet35'")) << smp_name;
  EXPECT_TRUE(contains(smp_name, "resnet34")) << smp_name;  // a close match is suggested
  EXPECT_FALSE(contains(smp_name, "\n")) << smp_name;
  const auto timm_name = error_of([] { smp::get_preprocessing_params("tu-not_a_timm_model"); });
  EXPECT_TRUE(contains(timm_name, "Unknown encoder 'tu-not_a_timm_model'")) << timm_name;
  EXPECT_FALSE(contains(timm_name, "\n")) << timm_name;
}

TEST(Preprocessing, PreprocessNormalizesImagesAndBatches) {
  const auto params = smp::get_preprocessing_params("tu-vit_base_patch16_224");
  // (x - 0.5) / 0.5 = 2x - 1 in every channel.
  const auto image = torch::tensor({0.0, 0.25, 0.5, 1.0}, torch::kFloat).view({1, 2, 2}).expand({3, 2, 2});
  const auto expected = torch::tensor({-1.0, -0.5, 0.0, 1.0}, torch::kFloat).view({1, 2, 2}).expand({3, 2, 2});
  EXPECT_TRUE(torch::allclose(smp::preprocess(image, params), expected));

  torch::manual_seed(0);
  const auto batch = torch::rand({2, 3, 4, 5});
  const auto imagenet = smp::get_preprocessing_params("resnet34");
  const auto mean = torch::tensor(kImagenetMean, torch::kFloat).view({1, 3, 1, 1});
  const auto stdev = torch::tensor(kImagenetStd, torch::kFloat).view({1, 3, 1, 1});
  const auto out = smp::preprocess(batch, imagenet);
  ASSERT_EQ(out.sizes(), batch.sizes());
  EXPECT_TRUE(torch::allclose(out, (batch - mean) / stdev, 1e-6, 1e-6));
  EXPECT_EQ(smp::preprocess(torch::rand({0, 3, 4, 5}), imagenet).sizes(), (std::vector<int64_t>{0, 3, 4, 5}));
}

TEST(Preprocessing, PreprocessRefusesWhatItCannotNormalize) {
  const auto params = smp::get_preprocessing_params("resnet34");
  EXPECT_THROW(smp::preprocess(torch::zeros({3, 4, 4}, torch::kUInt8), params), std::invalid_argument);
  EXPECT_THROW(smp::preprocess(torch::zeros({4, 4}), params), std::invalid_argument);
  EXPECT_THROW(smp::preprocess(torch::zeros({1, 4, 4, 4}), params), std::invalid_argument);  // 4 channels
  auto bgr = params;
  bgr.input_space = "BGR";
  EXPECT_THROW(smp::preprocess(torch::zeros({3, 4, 4}), bgr), std::invalid_argument);
  auto bytes = params;
  bytes.input_range = {0.0, 255.0};
  EXPECT_THROW(smp::preprocess(torch::zeros({3, 4, 4}), bytes), std::invalid_argument);
}

TEST(ModelCard, SaveWritesDatasetMetricsAndArchitecture) {
  TempDir dir;
  auto model = small_unet();
  model->save_pretrained(dir.path.string(), "toy-shapes-v2", {{"iou", 0.8125}, {"f1", 0.875}});
  const auto card = read_text(dir.path / "README.md");
  EXPECT_TRUE(contains(card, "toy-shapes-v2")) << card;
  EXPECT_TRUE(contains(card, "| iou | 0.8125 |")) << card;
  EXPECT_TRUE(contains(card, "| f1 | 0.875 |")) << card;
  EXPECT_TRUE(contains(card, "Architecture: Unet")) << card;
  EXPECT_TRUE(contains(card, "Encoder: tu-resnet18")) << card;
  EXPECT_TRUE(contains(card, "library_name: segmentation-models-pytorch")) << card;
  EXPECT_TRUE(contains(card, "\"decoder_channels\": [")) << card;  // the keyword arguments as JSON
  // The folder still loads as a model folder.
  auto loaded = smp::from_pretrained(dir.path.string());
  EXPECT_EQ(loaded->arch(), "Unet");
  EXPECT_EQ(loaded->config(), model->config());
}

TEST(ModelCard, WithoutDatasetOrMetricsTheCardSaysSo) {
  TempDir dir;
  small_unet()->save_pretrained(dir.path.string());
  const auto card = read_text(dir.path / "README.md");
  EXPECT_TRUE(contains(card, "Dataset: not recorded")) << card;
  EXPECT_TRUE(contains(card, "## Metrics\n\nNot recorded.")) << card;
  EXPECT_TRUE(contains(card, "Architecture: Unet")) << card;
}

TEST(ModelCard, ExistingCardAndOtherFilesAreKept) {
  TempDir dir;
  std::ofstream(dir.path / "README.md") << "my own card\n";
  std::ofstream(dir.path / "notes.txt") << "keep me\n";
  small_unet()->save_pretrained(dir.path.string(), "toy-shapes-v2", {{"iou", 0.5}});
  EXPECT_EQ(read_text(dir.path / "README.md"), "my own card\n");
  EXPECT_EQ(read_text(dir.path / "notes.txt"), "keep me\n");
  EXPECT_TRUE(fs::exists(dir.path / "config.json"));
  EXPECT_EQ(smp::from_pretrained(dir.path.string())->arch(), "Unet");
}
