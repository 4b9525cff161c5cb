// Data pipeline: datasets from folders and CSV lists with their errors, every mask format,
// augmentations keeping image and mask aligned, the loader's determinism across worker counts, bad
// files skipped and counted, shutdown mid-epoch, and the synthetic shapes.
#include <gtest/gtest.h>
#include <smp/data.h>
#include <smp/image.h>
#include <smp/log.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "support.h"

using namespace smp::test;
using namespace smp::data;
namespace fs = std::filesystem;

namespace {

// A [3, h, w] image whose channels are distinct multiples of 1/255 (exact through PNG).
torch::Tensor test_image(int64_t h, int64_t w, int64_t offset = 0) {
  auto v = torch::arange(3 * h * w).add(offset).remainder(256).to(torch::kFloat).div(255.0);
  return v.reshape({3, h, w});
}

torch::Tensor test_mask(int64_t h, int64_t w, int64_t classes = 4) {
  return torch::arange(h * w).remainder(classes).reshape({h, w});
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// images/ and masks/ folders with the given stems; image extensions cycle through png, jpg, tif.
void make_pairs(const TempDir& dir, const std::vector<std::string>& stems, const std::string& mask_suffix = "") {
  fs::create_directories(dir.path / "images");
  fs::create_directories(dir.path / "masks");
  const std::vector<std::string> exts = {".png", ".jpg", ".tif"};
  for (size_t i = 0; i < stems.size(); ++i) {
    smp::image::write_rgb(dir / ("images/" + stems[i] + exts[i % exts.size()]), test_image(8, 12, static_cast<int64_t>(i)));
    smp::image::write_mask(dir / ("masks/" + stems[i] + mask_suffix + ".png"), test_mask(8, 12));
  }
}

// A sample whose mask is the pixel's position and whose image holds (row, column, class) so that
// alignment can be checked after any geometric transform.
Sample position_sample(int64_t h, int64_t w) {
  auto ys = torch::arange(h).view({h, 1}).expand({h, w}).to(torch::kFloat);
  auto xs = torch::arange(w).view({1, w}).expand({h, w}).to(torch::kFloat);
  Sample s;
  s.image = torch::stack({ys, xs, torch::zeros({h, w})});
  s.mask = (ys * w + xs).to(torch::kLong);
  s.name = "position";
  return s;
}

void expect_aligned(const Sample& s, int64_t original_width) {
  auto y = s.mask.div(original_width, "floor").to(torch::kFloat);
  auto x = s.mask.remainder(original_width).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(s.image[0], y));
  EXPECT_TRUE(torch::equal(s.image[1], x));
}

Sample transformed(const Transform& t, Sample s, uint64_t seed = 1) {
  Rng rng(seed);
  t(s, rng);
  return s;
}

std::vector<Batch> epoch_batches(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(*b);
  return out;
}

// ---- Datasets ----

TEST(DataFolders, PairsImagesAndMasksByStem) {
  TempDir dir;
  make_pairs(dir, {"b", "a", "c"});
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(fs::path(ds->files()[0].first).filename(), "a.jpg");  // in stem order
  std::vector<std::string> stems;
  for (const auto& [image, mask] : ds->files()) {
    EXPECT_EQ(fs::path(image).stem(), fs::path(mask).stem());
    stems.push_back(fs::path(image).stem().string());
  }
  EXPECT_EQ(stems, (std::vector<std::string>{"a", "b", "c"}));
  auto s = ds->get(0);
  EXPECT_EQ(s.image.sizes(), torch::IntArrayRef({3, 8, 12}));
  EXPECT_TRUE(torch::equal(s.mask, test_mask(8, 12)));
}

TEST(DataFolders, MaskSuffix) {
  TempDir dir;
  make_pairs(dir, {"x", "y"}, "_mask");
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks", FileDatasetOptions().mask_suffix("_mask"));
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(fs::path(ds->files()[1].second).filename(), "y_mask.png");
  EXPECT_NE(error_of([&] { FileDataset::from_folders(dir / "images", dir / "masks"); }).find("have no mask"),
            std::string::npos);
}

TEST(DataFolders, Errors) {
  TempDir dir;
  fs::create_directories(dir.path / "empty");
  EXPECT_EQ(error_of([&] { FileDataset::from_folders(dir / "missing", dir / "empty"); }),
            "image folder '" + dir / "missing" + "' does not exist or is not a folder");
  EXPECT_EQ(error_of([&] { FileDataset::from_folders(dir / "empty", dir / "empty"); }),
            "image folder '" + dir / "empty" + "' holds no image files (.png, .jpg, .jpeg, .tif, .tiff, .bmp)");

  make_pairs(dir, {"a", "b"});
  for (const auto& stem : {"c", "d", "e", "f", "g", "h"})
    smp::image::write_rgb(dir / (std::string("images/") + stem + ".png"), test_image(4, 4));
  EXPECT_EQ(error_of([&] { FileDataset::from_folders(dir / "images", dir / "masks"); }),
            "6 of 8 images have no mask in '" + dir / "masks" +
                "' (masks are matched by file stem): c.png, d.png, e.png, f.png, g.png, ...");

  smp::image::write_rgb(dir / "images/a.jpeg", test_image(4, 4));
  EXPECT_EQ(error_of([&] { FileDataset::from_folders(dir / "images", dir / "masks"); }),
            "'a.jpeg' and 'a.png' in '" + dir / "images" + "' share the stem 'a'; keep one file per stem");
}

TEST(DataFolders, ExtraMasksAreIgnoredWithAWarning) {
  TempDir dir;
  make_pairs(dir, {"a", "b"});
  fs::remove(dir.path / "images" / "b.jpg");
  smp::log::Capture capture;
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks");
  EXPECT_EQ(ds->size(), 1);
  ASSERT_EQ(capture.lines().size(), 1u);
  EXPECT_EQ(capture.lines()[0].second, "1 of 2 masks in '" + dir / "masks" + "' have no image and are ignored");
}

TEST(DataCsv, RelativePathsHeaderAndBlankLines) {
  TempDir dir;
  make_pairs(dir, {"a", "b"});
  write_bytes(dir / "list.csv", "image,mask\n\nimages/b.jpg, masks/b.png\r\n\"" + dir / "images/a.png" +
                                    "\",masks/a.png\n");
  auto ds = FileDataset::from_csv(dir / "list.csv");
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->files()[0].first, dir / "images/b.jpg");
  EXPECT_EQ(ds->files()[0].second, dir / "masks/b.png");
  EXPECT_EQ(ds->files()[1].first, dir / "images/a.png");
  EXPECT_TRUE(torch::equal(ds->get(1).mask, test_mask(8, 12)));
}

TEST(DataCsv, Errors) {
  TempDir dir;
  make_pairs(dir, {"a"});
  EXPECT_EQ(error_of([&] { FileDataset::from_csv(dir / "none.csv"); }),
            "cannot read the CSV list '" + dir / "none.csv" + "'");
  write_bytes(dir / "empty.csv", "image,mask\n\n");
  EXPECT_EQ(error_of([&] { FileDataset::from_csv(dir / "empty.csv"); }),
            "the CSV list '" + dir / "empty.csv" + "' holds no image,mask lines");
  write_bytes(dir / "bad.csv", "images/a.png,masks/a.png\nimages/a.png;masks/a.png\n");
  EXPECT_EQ(error_of([&] { FileDataset::from_csv(dir / "bad.csv"); }),
            dir / "bad.csv" + ":2: expected 'image,mask', got 'images/a.png;masks/a.png'");
  write_bytes(dir / "missing.csv", "images/a.png,masks/a.png\nimages/z.png,masks/a.png\n");
  EXPECT_EQ(error_of([&] { FileDataset::from_csv(dir / "missing.csv"); }),
            "1 files listed in '" + dir / "missing.csv" + "' do not exist: " + dir / "images/z.png");
}

TEST(DataFiles, UnreadableFileAndSizeMismatchNameTheFile) {
  TempDir dir;
  make_pairs(dir, {"a", "b"});
  write_bytes(dir / "images/a.png", "not a png");
  smp::image::write_mask(dir / "masks/b.png", test_mask(5, 5));
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks");
  EXPECT_EQ(error_of([&] { ds->get(0); }),
            dir / "images/a.png" + ": cannot read image (missing, corrupt or unsupported format)");
  EXPECT_EQ(error_of([&] { ds->get(1); }),
            dir / "masks/b.png" + ": mask is 5x5 but its image '" + dir / "images/b.jpg" + "' is 8x12");
}

// ---- Mask formats ----

TEST(DataMasks, ClassIndices) {
  TempDir dir;
  smp::image::write_mask(dir / "m.png", test_mask(6, 7, 5));
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png"), test_mask(6, 7, 5)));
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png", MaskOptions().format(MaskFormat::kIndex)), test_mask(6, 7, 5)));
  // An RGB file with equal channels holds indices too.
  smp::image::write_rgb(dir / "grey.png", test_mask(6, 7, 5).to(torch::kFloat).div(255.0).unsqueeze(0).expand({3, 6, 7}));
  EXPECT_TRUE(torch::equal(read_mask(dir / "grey.png"), test_mask(6, 7, 5)));
}

TEST(DataMasks, BinaryZeroAndTwoFiftyFive) {
  TempDir dir;
  auto binary = test_mask(6, 7, 2);
  smp::image::write_mask(dir / "m.png", binary * 255);
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png"), binary));
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png", MaskOptions().format(MaskFormat::kBinary)), binary));
  // As indices on request (255 stays, e.g. an ignore index).
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png", MaskOptions().format(MaskFormat::kIndex)), binary * 255));
  // Forced binary thresholds grey values at 128.
  smp::image::write_mask(dir / "grey.png", torch::tensor({0, 127, 128, 200}).view({2, 2}));
  EXPECT_TRUE(torch::equal(read_mask(dir / "grey.png", MaskOptions().format(MaskFormat::kBinary)),
                           torch::tensor({0, 0, 1, 1}).view({2, 2})));
}

TEST(DataMasks, RgbColourTable) {
  TempDir dir;
  const std::vector<Color> colors = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  auto mask = test_mask(6, 7, 4);
  auto rgb = torch::zeros({3, 6, 7});
  for (int64_t c = 1; c < 4; ++c) rgb[c - 1].masked_fill_(mask == c, 1.0);
  smp::image::write_rgb(dir / "m.png", rgb);
  EXPECT_TRUE(torch::equal(read_mask(dir / "m.png", MaskOptions().class_colors(colors)), mask));
  EXPECT_EQ(error_of([&] { read_mask(dir / "m.png"); }),
            dir / "m.png" +
                ": mask is a colour image; give the class colour table (MaskOptions::class_colors) or save masks as "
                "class indices");
  EXPECT_EQ(error_of([&] { read_mask(dir / "m.png", MaskOptions().class_colors({{0, 0, 0}, {255, 0, 0}})); }),
            dir / "m.png" + ": colour (0, 255, 0) at row 0, column 2 is not in the class colour table");
  EXPECT_EQ(error_of([&] { read_mask(dir / "m.png", MaskOptions().format(MaskFormat::kColor)); }),
            "MaskFormat::kColor needs the class colour table (MaskOptions::class_colors)");
}

TEST(DataMasks, PaletteWithIgnoreColour) {
  // A 4x3 palette PNG (VOC-like colours; index 255 is the border colour).
  const auto path = std::string(SMP_TEST_DATA) + "/masks/palette.png";
  auto options = MaskOptions().class_colors({{0, 0, 0}, {128, 0, 0}, {0, 128, 0}, {128, 128, 0}});
  EXPECT_NE(error_of([&] { read_mask(path, options); }).find("colour (224, 224, 192) at row 2, column 2"),
            std::string::npos);
  auto mask = read_mask(path, options.ignore_color(Color{224, 224, 192}));
  EXPECT_TRUE(torch::equal(mask, torch::tensor({0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 255, 1}).view({3, 4})));
}

TEST(DataMasks, UnreadableMask) {
  TempDir dir;
  write_bytes(dir / "m.png", "\x89PNG broken");
  EXPECT_EQ(error_of([&] { read_mask(dir / "m.png"); }),
            dir / "m.png" + ": cannot read mask (missing, corrupt or unsupported format)");
}

// ---- Augmentations ----

TEST(DataTransforms, FlipsAndRot90MoveImageAndMaskTogether) {
  const auto s = position_sample(5, 7);
  auto h = transformed(hflip(1.0), s);
  EXPECT_TRUE(torch::equal(h.mask, s.mask.flip({1})));
  expect_aligned(h, 7);
  auto v = transformed(vflip(1.0), s);
  EXPECT_TRUE(torch::equal(v.mask, s.mask.flip({0})));
  expect_aligned(v, 7);
  EXPECT_TRUE(torch::equal(transformed(hflip(0.0), s).mask, s.mask));

  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    auto r = transformed(rot90(), s, seed);
    expect_aligned(r, 7);
    // Counter-clockwise quarter turns: the top-right corner goes to the top-left first.
    int64_t k = 0;
    while (k < 4 && !torch::equal(r.mask, torch::rot90(s.mask, k, {0, 1}))) ++k;
    ASSERT_LT(k, 4);
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(torch::rot90(s.mask, 1, {0, 1})[0][0].item<int64_t>(), 6);
}

TEST(DataTransforms, RandomCropKeepsOffsetsEqual) {
  const auto s = position_sample(20, 30);
  std::set<int64_t> corners;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto c = transformed(random_scale_crop(8, 10), s, seed);
    ASSERT_EQ(c.image.sizes(), torch::IntArrayRef({3, 8, 10}));
    ASSERT_EQ(c.mask.sizes(), torch::IntArrayRef({8, 10}));
    expect_aligned(c, 30);
    // A contiguous window of the original.
    const auto corner = c.mask[0][0].item<int64_t>();
    EXPECT_TRUE(torch::equal(c.mask, s.mask.slice(0, corner / 30, corner / 30 + 8).slice(1, corner % 30, corner % 30 + 10)));
    corners.insert(corner);
  }
  EXPECT_GT(corners.size(), 10u);
}

TEST(DataTransforms, ScaledCropKeepsMaskOnItsImage) {
  // 16x16 blocks of one class whose image value is class / 10: after rescaling, pixels away from block
  // edges must still agree (a one-pixel shift between image and mask would break many of them).
  Sample s;
  auto blocks = torch::randint(0, 5, {8, 8}, torch::TensorOptions().dtype(torch::kLong));
  s.mask = blocks.repeat_interleave(16, 0).repeat_interleave(16, 1);
  s.image = (s.mask.to(torch::kFloat) / 10.0).unsqueeze(0).repeat({3, 1, 1});
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto c = transformed(random_scale_crop(96, 96, 0.75, 2.0), s, seed);
    ASSERT_EQ(c.mask.sizes(), torch::IntArrayRef({96, 96}));
    auto agree = ((c.image[0] * 10.0 - c.mask.to(torch::kFloat)).abs() < 0.05).to(torch::kFloat).mean().item<double>();
    EXPECT_GT(agree, 0.85) << "seed " << seed;
  }
}

TEST(DataTransforms, ScaleCropPadsSmallImages) {
  auto c = transformed(random_scale_crop(16, 16, 1.0, 1.0, 255), position_sample(10, 12));
  ASSERT_EQ(c.mask.sizes(), torch::IntArrayRef({16, 16}));
  EXPECT_EQ((c.mask == 255).sum().item<int64_t>(), 16 * 16 - 10 * 12);
  // Centred: 3 rows above, 2 columns left.
  EXPECT_EQ(c.mask[3][2].item<int64_t>(), 0);
  EXPECT_EQ(c.image.abs().sum().item<double>(), position_sample(10, 12).image.abs().sum().item<double>());
}

TEST(DataTransforms, PadToMultiple) {
  auto p = transformed(pad_to_multiple(16, -1), position_sample(30, 45));
  ASSERT_EQ(p.image.sizes(), torch::IntArrayRef({3, 32, 48}));
  ASSERT_EQ(p.mask.sizes(), torch::IntArrayRef({32, 48}));
  EXPECT_TRUE(torch::equal(p.mask.slice(0, 0, 30).slice(1, 0, 45), position_sample(30, 45).mask));
  EXPECT_EQ((p.mask == -1).sum().item<int64_t>(), 32 * 48 - 30 * 45);
  EXPECT_EQ(p.image.slice(1, 30).abs().sum().item<double>(), 0.0);
  // Already a multiple: unchanged.
  EXPECT_EQ(transformed(pad_to_multiple(8), position_sample(16, 24)).mask.sizes(), torch::IntArrayRef({16, 24}));
  EXPECT_EQ(error_of([] { pad_to_multiple(0); }), "pad_to_multiple: multiple must be positive, got 0");
}

TEST(DataTransforms, ResizeUsesNearestForTheMask) {
  auto r = transformed(resize(6, 6), position_sample(3, 3));
  // Each source pixel becomes a 2x2 block.
  EXPECT_TRUE(torch::equal(r.mask, position_sample(3, 3).mask.repeat_interleave(2, 0).repeat_interleave(2, 1)));
  EXPECT_EQ(r.image.sizes(), torch::IntArrayRef({3, 6, 6}));
}

TEST(DataTransforms, NormalizeWithEncoderStatistics) {
  Sample s;
  s.image = torch::full({3, 2, 2}, 0.5);
  s.mask = torch::zeros({2, 2}, torch::kLong);
  const std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  auto n = transformed(normalize(mean, std), s);
  for (int64_t c = 0; c < 3; ++c)
    EXPECT_NEAR(n.image[c][1][1].item<double>(), (0.5 - mean[c]) / std[c], 1e-6);
  EXPECT_EQ(error_of([] { normalize({0.5}, {0.5, 0.5}); }),
            "normalize: mean and std need one value per channel, got 1 and 2");
  EXPECT_EQ(error_of([&] { transformed(normalize({0.5}, {0.5}), s); }),
            "normalize: 1 mean/std values for an image with 3 channels");
}

TEST(DataTransforms, ColorJitterChangesOnlyTheImage) {
  Sample s;
  s.image = torch::rand({3, 16, 16});
  s.mask = test_mask(16, 16);
  auto same = transformed(color_jitter(0.0, 0.0, 0.0), s);
  EXPECT_TRUE(torch::allclose(same.image, s.image, 1e-6, 1e-6));
  for (uint64_t seed = 0; seed < 5; ++seed) {
    auto j = transformed(color_jitter(0.4, 0.4, 0.5), s, seed);
    EXPECT_TRUE(torch::equal(j.mask, s.mask));
    EXPECT_GE(j.image.min().item<double>(), 0.0);
    EXPECT_LE(j.image.max().item<double>(), 1.0);
    EXPECT_FALSE(torch::allclose(j.image, s.image));
  }
  // A hue shift keeps grey pixels grey and rotates pure red towards green.
  Sample grey;
  grey.image = torch::full({3, 1, 2}, 0.3);
  grey.image.select(2, 1).copy_(torch::tensor({1.0, 0.0, 0.0}).view({3, 1}));
  grey.mask = torch::zeros({1, 2}, torch::kLong);
  auto g = transformed(color_jitter(0.0, 0.0, 0.5), grey, 3);
  EXPECT_TRUE(torch::allclose(g.image.select(2, 0), torch::full({3, 1}, 0.3), 1e-6, 1e-6));
  EXPECT_NEAR(g.image.select(2, 1).max().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(g.image.select(2, 1).min().item<double>(), 0.0, 1e-6);
}

TEST(DataTransforms, SeededAndComposed) {
  auto t = compose({random_scale_crop(16, 16, 0.5, 1.5), hflip(), vflip(), rot90(), color_jitter(0.3, 0.3, 0.1)});
  Sample s;
  s.image = torch::rand({3, 24, 20});
  s.mask = test_mask(24, 20);
  auto a = transformed(t, s, sample_seed(7, 2, 5)), b = transformed(t, s, sample_seed(7, 2, 5));
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.mask, b.mask));
  auto c = transformed(t, s, sample_seed(7, 3, 5));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_NE(sample_seed(7, 2, 5), sample_seed(7, 5, 2));
  EXPECT_NE(sample_seed(7, 2, 5), sample_seed(8, 2, 5));
}

// ---- Loader ----

Transform augment() {
  return compose({random_scale_crop(24, 24, 0.75, 1.25), hflip(), rot90(), color_jitter(0.2, 0.2, 0.05),
                  normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})});
}

TEST(DataLoader, SameBatchesForEveryWorkerCount) {
  auto ds = std::make_shared<SyntheticDataset>(SyntheticOptions().count(11).height(32).width(32).seed(3));
  std::vector<std::vector<Batch>> runs;
  for (int64_t workers : {0, 1, 3}) {
    Loader loader(ds, augment(), LoaderOptions().batch_size(4).workers(workers).prefetch(2).seed(9));
    EXPECT_EQ(loader.batches_per_epoch(), 3);
    runs.push_back(epoch_batches(loader, 1));
  }
  for (const auto& run : runs) {
    ASSERT_EQ(run.size(), 3u);
    EXPECT_EQ(run[2].images.sizes(), torch::IntArrayRef({3, 3, 24, 24}));
    for (size_t b = 0; b < run.size(); ++b) {
      EXPECT_EQ(run[b].indices, runs[0][b].indices);
      EXPECT_TRUE(torch::equal(run[b].images, runs[0][b].images));
      EXPECT_TRUE(torch::equal(run[b].masks, runs[0][b].masks));
      EXPECT_EQ(run[b].masks.scalar_type(), torch::kLong);
    }
  }
  // Every sample once per epoch; another epoch has another order.
  std::vector<int64_t> all;
  for (const auto& b : runs[0]) all.insert(all.end(), b.indices.begin(), b.indices.end());
  std::vector<int64_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  Loader loader(ds, augment(), LoaderOptions().batch_size(4).seed(9));
  std::vector<int64_t> other;
  for (const auto& b : epoch_batches(loader, 2)) other.insert(other.end(), b.indices.begin(), b.indices.end());
  EXPECT_NE(all, other);
}

TEST(DataLoader, InOrderWithoutShuffleAndDropLast) {
  auto ds = std::make_shared<SyntheticDataset>(SyntheticOptions().count(7).height(16).width(16));
  Loader loader(ds, nullptr, LoaderOptions().batch_size(3).shuffle(false).drop_last(true).workers(2));
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  auto batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].indices, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_TRUE(torch::equal(batches[0].images[1], ds->get(1).image));
  EXPECT_FALSE(loader.next().has_value());
}

TEST(DataLoader, CorruptFileIsSkippedCountedAndReportedOnce) {
  TempDir dir;
  make_pairs(dir, {"a", "b", "c", "d", "e"});
  write_bytes(dir / "images/c.tif", "corrupt");
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks");
  smp::log::Capture capture;
  Loader loader(ds, resize(8, 8), LoaderOptions().batch_size(2).workers(2).shuffle(false));
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    auto batches = epoch_batches(loader, epoch);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[1].indices, (std::vector<int64_t>{3}));  // c (index 2) is missing from its batch
    EXPECT_EQ(batches[1].images.size(0), 1);
  }
  const auto summary = loader.summary();
  EXPECT_EQ(summary.loaded, 8);
  EXPECT_EQ(summary.skipped, 2);
  const auto reason = dir / "images/c.tif" + ": cannot read image (missing, corrupt or unsupported format)";
  EXPECT_EQ(summary.skip_reasons, std::vector<std::string>{reason});
  int warnings = 0;
  for (const auto& [level, message] : capture.lines())
    if (level == "WARN" && message == "skipping sample 2: " + reason) ++warnings;
  EXPECT_EQ(warnings, 1);
}

TEST(DataLoader, BatchOfOnlyBadFilesIsLeftOut) {
  TempDir dir;
  make_pairs(dir, {"a", "b", "c"});
  write_bytes(dir / "masks/b.png", "corrupt");
  auto ds = FileDataset::from_folders(dir / "images", dir / "masks");
  Loader loader(ds, nullptr, LoaderOptions().batch_size(1).workers(2).shuffle(false));
  auto batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].indices, std::vector<int64_t>{2});
  EXPECT_EQ(loader.summary().skipped, 1);
}

TEST(DataLoader, TransformAndBatchingErrorsReachTheCaller) {
  auto ds = std::make_shared<SyntheticDataset>(SyntheticOptions().count(4).height(16).width(16));
  Loader loader(ds, normalize({0.5}, {0.5}), LoaderOptions().batch_size(2).workers(2));
  loader.start_epoch(0);
  EXPECT_EQ(error_of([&] { loader.next(); }), "normalize: 1 mean/std values for an image with 3 channels");

  auto uneven = [](Sample& s, Rng&) {
    if (s.name != "00001") return;
    s.image = s.image.slice(1, 0, 8);
    s.mask = s.mask.slice(0, 0, 8);
  };
  Loader mixed(ds, uneven, LoaderOptions().batch_size(2).shuffle(false).workers(1));
  mixed.start_epoch(0);
  EXPECT_EQ(error_of([&] { mixed.next(); }),
            "samples of one batch differ in size: '00000' is 3x16x16, '00001' is 3x8x16; add resize, "
            "random_scale_crop or pad_to_multiple to the transform, or use batch_size 1");
  EXPECT_TRUE(mixed.next().has_value());  // the epoch goes on
}

TEST(DataLoader, StopsCleanlyMidEpoch) {
  auto ds = std::make_shared<SyntheticDataset>(SyntheticOptions().count(64).height(32).width(32));
  for (int round = 0; round < 3; ++round) {
    Loader loader(ds, augment(), LoaderOptions().batch_size(2).workers(4).prefetch(3));
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
    loader.start_epoch(1);  // abandons epoch 0
    ASSERT_TRUE(loader.next().has_value());
  }  // destroyed with workers busy
  Loader idle(ds, nullptr, LoaderOptions().workers(3));
  EXPECT_EQ(error_of([&] { idle.next(); }), "Loader::next: call start_epoch first");
}

TEST(DataLoader, OptionErrors) {
  auto ds = std::make_shared<SyntheticDataset>(SyntheticOptions().count(2));
  EXPECT_EQ(error_of([&] { Loader(ds, nullptr, LoaderOptions().batch_size(0)); }),
            "Loader: batch_size must be positive, got 0");
  EXPECT_EQ(error_of([&] { Loader(ds, nullptr, LoaderOptions().prefetch(0)); }),
            "Loader: prefetch must be positive, got 0");
  EXPECT_EQ(error_of([&] { Loader(nullptr, nullptr); }), "Loader needs a dataset");
}

// ---- Synthetic shapes ----

TEST(DataSynthetic, SeededShapesOfThreeClasses) {
  SyntheticDataset ds(SyntheticOptions().count(20).height(64).width(80).seed(5));
  std::set<int64_t> classes;
  for (int64_t i = 0; i < ds.size(); ++i) {
    auto s = ds.get(i);
    ASSERT_EQ(s.image.sizes(), torch::IntArrayRef({3, 64, 80}));
    ASSERT_EQ(s.mask.sizes(), torch::IntArrayRef({64, 80}));
    EXPECT_GT((s.mask > 0).sum().item<int64_t>(), 0);
    EXPECT_LE(s.mask.max().item<int64_t>(), 3);
    for (int64_t c = 0; c < 4; ++c)
      if ((s.mask == c).any().item<bool>()) classes.insert(c);
  }
  EXPECT_EQ(classes, (std::set<int64_t>{0, 1, 2, 3}));
  SyntheticDataset again(SyntheticOptions().count(20).height(64).width(80).seed(5));
  EXPECT_TRUE(torch::equal(ds.get(7).image, again.get(7).image));
  SyntheticDataset other(SyntheticOptions().count(20).height(64).width(80).seed(6));
  EXPECT_FALSE(torch::equal(ds.get(7).mask, other.get(7).mask));
}

TEST(DataSynthetic, WrittenFolderReadsBackIdentically) {
  TempDir dir;
  const auto options = SyntheticOptions().count(3).height(32).width(48).seed(1);
  write_synthetic(dir / "shapes", options);
  auto files = FileDataset::from_folders(dir / "shapes/images", dir / "shapes/masks");
  SyntheticDataset memory(options);
  ASSERT_EQ(files->size(), 3);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(torch::equal(files->get(i).image, memory.get(i).image));
    EXPECT_TRUE(torch::equal(files->get(i).mask, memory.get(i).mask));
  }
}

}  // namespace
