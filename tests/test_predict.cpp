// Whole-image inference: tiles, padding, flip TTA, masks, overlays and the folder driver.
#include <gtest/gtest.h>
#include <smp/predict.h>
#include <smp/smp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support.h"

using namespace smp::test;
namespace fs = std::filesystem;

namespace {

struct PredictDir {
  fs::path path = fs::temp_directory_path() / ("smp_predict_" + std::to_string(::getpid()));
  PredictDir() { fs::create_directories(path); }
  ~PredictDir() { fs::remove_all(path); }
};

smp::SegmentationModel seeded_unet(int64_t classes = 3) {
  torch::manual_seed(0);
  smp::SegmentationModel model = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").classes(classes)).ptr();
  model->eval();
  return model;
}

torch::Tensor random_image(int64_t h, int64_t w) {
  torch::manual_seed(1);
  return torch::randn({3, h, w});
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST(Predict, TileStartsCoverTheSideWithTheLastFlush) {
  EXPECT_EQ(smp::tile_starts(160, 64, 32), (std::vector<int64_t>{0, 32, 64, 96}));
  EXPECT_EQ(smp::tile_starts(96, 64, 32), (std::vector<int64_t>{0, 32}));
  EXPECT_EQ(smp::tile_starts(100, 64, 0), (std::vector<int64_t>{0, 36}));
  EXPECT_EQ(smp::tile_starts(64, 64, 16), (std::vector<int64_t>{0}));
  EXPECT_EQ(smp::tile_starts(40, 64, 16), (std::vector<int64_t>{0}));
}

TEST(Predict, TileWeightsArePositiveAndSumToOneAcrossAnOverlap) {
  const int64_t n = 64, overlap = 16;
  auto w = smp::tile_weight(n, n, overlap);
  EXPECT_GT(w.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(w[n / 2][n / 2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(w[0][0].item<float>(), 1.0f / 289.0f);  // (1/17)^2 in the corner
  // Along a row: the right edge of one window plus the left edge of the next, `overlap` pixels apart.
  auto row = w[n / 2];
  auto joined = row.slice(0, n - overlap, n) + row.slice(0, 0, overlap);
  EXPECT_TRUE(torch::allclose(joined, torch::ones({overlap}), 0, 1e-6));
}

TEST(Predict, TiledBlendEqualsDirectForAPointwiseModel) {
  // A 1x1 convolution sees no neighbours, so every window predicts exactly what the whole image does:
  // the blend must then reproduce the direct output, whatever the weights.
  torch::manual_seed(2);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 1));
  std::vector<std::vector<int64_t>> shapes;
  smp::ForwardFn forward = [&](const torch::Tensor& x) {
    shapes.push_back(x.sizes().vec());
    return conv->forward(x);
  };
  auto image = random_image(96, 160);
  auto direct = smp::predict_logits(forward, 32, image, smp::PredictOptions().tile_size(0));
  ASSERT_EQ(shapes.size(), 1u);
  EXPECT_EQ(direct.sizes(), (std::vector<int64_t>{4, 96, 160}));

  shapes.clear();
  auto tiled = smp::predict_logits(forward, 32, image,
                                   smp::PredictOptions().tile_size(64).overlap(32).max_direct_pixels(0).batch_size(3));
  EXPECT_LT(max_abs_diff(tiled, direct), 1e-5);
  // 2 x 4 windows in batches of 3.
  ASSERT_EQ(shapes.size(), 3u);
  EXPECT_EQ(shapes[0], (std::vector<int64_t>{3, 3, 64, 64}));
  EXPECT_EQ(shapes[2], (std::vector<int64_t>{2, 3, 64, 64}));

  // Windows that are no multiple of the stride are padded; the blend is still exact.
  shapes.clear();
  auto odd = smp::predict_logits(forward, 32, image,
                                 smp::PredictOptions().tile_size(50).overlap(10).max_direct_pixels(0).batch_size(64));
  EXPECT_LT(max_abs_diff(odd, direct), 1e-5);
  ASSERT_EQ(shapes.size(), 1u);
  EXPECT_EQ(shapes[0], (std::vector<int64_t>{3 * 4, 3, 64, 64}));
}

TEST(Predict, UnetTiledEqualsDirectWhereOneTileHoldsTheImage) {
  auto model = seeded_unet();
  auto image = random_image(96, 160);
  auto direct = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(0));
  auto reference = model->predict(image.unsqueeze(0)).mask[0];
  EXPECT_LT(max_abs_diff(direct, reference), 1e-5);
  // Tiling forced (max_direct_pixels 0) with a window the size of the image.
  auto tiled = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(160).overlap(32).max_direct_pixels(0));
  EXPECT_LT(max_abs_diff(tiled, direct), 1e-5);
  // max_direct_pixels keeps images up to that size on the direct path.
  auto small =
      smp::predict_logits(*model, image, smp::PredictOptions().tile_size(64).overlap(16).max_direct_pixels(96 * 160));
  EXPECT_LT(max_abs_diff(small, direct), 1e-5);
}

TEST(Predict, UnetTiledOutputCoversTheImage) {
  auto model = seeded_unet();
  auto image = random_image(96, 160);
  auto tiled = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(64).overlap(32).max_direct_pixels(0));
  EXPECT_EQ(tiled.sizes(), (std::vector<int64_t>{3, 96, 160}));
  EXPECT_TRUE(torch::isfinite(tiled).all().item<bool>());
  EXPECT_FALSE(tiled.is_inference());
}

TEST(Predict, PaddingGivesTheInputSize) {
  auto model = seeded_unet();
  auto image = random_image(70, 100);
  auto out = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(0));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 70, 100}));
  // Zero padding at the bottom and right, then a crop.
  auto padded = torch::constant_pad_nd(image.unsqueeze(0), {0, 28, 0, 26});
  auto reference = model->predict(padded).mask[0].slice(1, 0, 70).slice(2, 0, 100);
  EXPECT_LT(max_abs_diff(out, reference), 1e-5);
  auto tiled = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(64).overlap(16).max_direct_pixels(0));
  EXPECT_EQ(tiled.sizes(), (std::vector<int64_t>{3, 70, 100}));
  // An image smaller than one stride.
  EXPECT_EQ(smp::predict_logits(*model, random_image(5, 7)).sizes(), (std::vector<int64_t>{3, 5, 7}));
}

TEST(Predict, FlipTTAIsFlipEquivariant) {
  auto model = seeded_unet();
  auto image = random_image(64, 96);
  const auto h = smp::PredictOptions().tile_size(0).flip_tta(smp::FlipTTA::kH);
  auto out = smp::predict_logits(*model, image, h);
  auto of_flipped = smp::predict_logits(*model, image.flip({2}), h);
  EXPECT_LT(max_abs_diff(of_flipped, out.flip({2})), 1e-5);
  // The average really differs from a single pass.
  auto plain = smp::predict_logits(*model, image, smp::PredictOptions().tile_size(0));
  EXPECT_GT(max_abs_diff(out, plain), 1e-3);
  // h + v: equivariant under both flips, and equal to the mean of the four passes.
  const auto hv = smp::PredictOptions().tile_size(0).flip_tta(smp::FlipTTA::kHV);
  auto both = smp::predict_logits(*model, image, hv);
  EXPECT_LT(max_abs_diff(smp::predict_logits(*model, image.flip({1}), hv), both.flip({1})), 1e-5);
  EXPECT_LT(max_abs_diff(smp::predict_logits(*model, image.flip({1, 2}), hv), both.flip({1, 2})), 1e-5);
  auto f = [&](const std::vector<int64_t>& dims) {
    auto x = image.unsqueeze(0);
    return model->predict(dims.empty() ? x : x.flip(dims)).mask;
  };
  auto mean = (f({}) + f({3}).flip({3}) + f({2}).flip({2}) + f({2, 3}).flip({2, 3}))[0] / 4;
  EXPECT_LT(max_abs_diff(both, mean), 1e-5);
  // TTA on the tiled path: a window holding the whole image gives the direct result.
  auto tiled = smp::predict_logits(*model, image, smp::PredictOptions(hv).tile_size(96).overlap(16).max_direct_pixels(0));
  EXPECT_LT(max_abs_diff(tiled, both), 1e-5);
  EXPECT_EQ(smp::parse_flip_tta("hv"), smp::FlipTTA::kHV);
  EXPECT_EQ(error_of([] { smp::parse_flip_tta("d4"); }), "flip TTA should be one of none, h, hv; got 'd4'");
}

TEST(Predict, BadOptionsAndArgmaxModelsAreRefused) {
  auto model = seeded_unet();
  auto image = random_image(32, 32);
  EXPECT_EQ(error_of([&] { smp::predict_logits(*model, image, smp::PredictOptions().tile_size(64).overlap(64)); }),
            "overlap must be at least 0 and smaller than tile_size=64, got 64; lower the overlap or raise the tile size");
  EXPECT_THROW(smp::predict_logits(*model, image, smp::PredictOptions().batch_size(0)), std::invalid_argument);
  EXPECT_THROW(smp::predict_logits(*model, image.unsqueeze(0)), std::invalid_argument);
  auto argmax = smp::create_model("Unet", {"encoder_name=tu-resnet18", "classes=3", "activation=argmax2d"});
  EXPECT_THROW(smp::predict_logits(*argmax, image), std::invalid_argument);
}

TEST(Predict, ClassMaskAndOverlay) {
  auto logits = torch::tensor({0.1f, 2.0f, 1.0f, 0.5f}).view({2, 1, 2});  // two classes, 1x2 pixels
  EXPECT_TRUE(torch::equal(smp::class_mask(logits), torch::tensor({int64_t{1}, int64_t{0}}).view({1, 2})));
  auto one = torch::tensor({-0.2f, 0.3f, 0.7f}).view({1, 1, 3});
  EXPECT_TRUE(torch::equal(smp::class_mask(one), torch::tensor({int64_t{0}, int64_t{1}, int64_t{1}}).view({1, 3})));
  EXPECT_TRUE(torch::equal(smp::class_mask(one, "sigmoid"), torch::tensor({int64_t{0}, int64_t{0}, int64_t{1}}).view({1, 3})));

  auto rgb = torch::full({3, 1, 3}, 0.2f);
  auto mask = torch::tensor({int64_t{0}, int64_t{1}, int64_t{3}}).view({1, 3});
  auto overlay = smp::render_overlay(rgb, mask);
  EXPECT_TRUE(torch::equal(overlay.select(2, 0), rgb.select(2, 0)));  // background untouched
  for (int64_t x : {1, 2}) {
    const auto color = smp::image::class_color(mask[0][x].item<int64_t>());
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_NEAR(overlay[c][0][x].item<float>(), 0.5 * 0.2 + 0.5 * color[c] / 255.0, 1e-6);
  }
  EXPECT_THROW(smp::render_overlay(rgb, mask.view({3, 1})), std::invalid_argument);
}

TEST(Predict, OutputNaming) {
  auto [mask, overlay] = smp::output_paths("/data/slides/tile_07.jpeg", "/out");
  EXPECT_EQ(mask, "/out/tile_07_mask.png");
  EXPECT_EQ(overlay, "/out/tile_07_overlay.png");
}

TEST(Predict, FolderWithOneCorruptImage) {
  PredictDir dir;
  const auto in = dir.path / "in", out = dir.path / "out" / "nested";
  fs::create_directories(in);
  torch::manual_seed(3);
  smp::image::write_rgb((in / "a.png").string(), torch::rand({3, 40, 72}));
  smp::image::write_rgb((in / "b.jpg").string(), torch::rand({3, 64, 64}));
  { std::ofstream(in / "x.png", std::ios::binary) << "this is not a PNG file"; }
  { std::ofstream(in / "notes.txt") << "ignored"; }
  const auto a_bytes = file_bytes(in / "a.png");

  EXPECT_EQ(smp::list_images(in.string()),
            (std::vector<std::string>{(in / "a.png").string(), (in / "b.jpg").string(), (in / "x.png").string()}));
  auto model = seeded_unet(4);
  auto report = smp::predict_files(*model, in.string(), out.string(), smp::PredictOptions().tile_size(32).overlap(8).max_direct_pixels(0));
  EXPECT_EQ(report.segmented, (std::vector<std::string>{(in / "a.png").string(), (in / "b.jpg").string()}));
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].first, (in / "x.png").string());
  EXPECT_NE(report.skipped[0].second.find("cannot read image"), std::string::npos) << report.skipped[0].second;
  EXPECT_EQ(report.summary(), "segmented 2 images, skipped 1: x.png");

  for (const auto* stem : {"a", "b"}) {
    EXPECT_TRUE(fs::exists(out / (std::string(stem) + "_mask.png"))) << stem;
    EXPECT_TRUE(fs::exists(out / (std::string(stem) + "_overlay.png"))) << stem;
  }
  EXPECT_FALSE(fs::exists(out / "x_mask.png"));
  EXPECT_FALSE(fs::exists(out / "notes_mask.png"));
  // The mask holds class indices at the image's size; the overlay is the image's size too.
  auto mask = smp::image::read_rgb((out / "a_mask.png").string())[0] * 255;
  EXPECT_EQ(mask.sizes(), (std::vector<int64_t>{40, 72}));
  EXPECT_LT(mask.max().item<float>(), 3.5f);
  EXPECT_EQ(smp::image::read_rgb((out / "a_overlay.png").string()).sizes(), (std::vector<int64_t>{3, 40, 72}));
  EXPECT_EQ(file_bytes(in / "a.png"), a_bytes);

  // A single file works too; its folder can't be the output.
  auto single = smp::predict_files(*model, (in / "b.jpg").string(), (dir.path / "one").string());
  EXPECT_EQ(single.summary(), "segmented 1 image, skipped 0");
  EXPECT_THROW(smp::predict_files(*model, in.string(), (in / "." ).string()), std::invalid_argument);
  EXPECT_THROW(smp::predict_files(*model, (in / "a.png").string(), in.string()), std::invalid_argument);
  EXPECT_THROW(smp::predict_files(*model, (dir.path / "missing").string(), out.string()), std::invalid_argument);
}
