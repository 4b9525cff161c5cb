// Training data: segmentation datasets (folders, CSV lists, synthetic shapes), augmentations applied
// to image and mask together, and a multi-threaded batch loader.
//
// Typical use:
//   auto train = smp::data::FileDataset::from_folders("data/images", "data/masks");
//   auto& enc = model->encoder();
//   auto augment = smp::data::compose({smp::data::random_scale_crop(256, 256, 0.5, 2.0),
//                                      smp::data::hflip(), smp::data::color_jitter(0.2, 0.2, 0.05),
//                                      smp::data::normalize(enc.mean(), enc.std())});
//   smp::data::Loader loader(train, augment, smp::data::LoaderOptions().batch_size(8).workers(2));
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) train_step(batch->images, batch->masks);
//   }
//
// Every random choice comes from an Rng seeded by sample_seed(seed, epoch, index), so a sample's
// augmentation depends only on those three numbers, never on thread scheduling or worker count.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace smp::data {

// One image with its mask. image: float [3, H, W] RGB in [0, 1] as read (any range after
// normalize); mask: int64 [H, W] class indices.
struct Sample {
  torch::Tensor image;
  torch::Tensor mask;
  std::string name;  // the image file (or a generated name), for messages
};

// ---- Random numbers ----

// The seed of one sample's augmentation: a hash of (seed, epoch, index).
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index);

// A small reproducible generator (mt19937_64, whose output the C++ standard fixes) with its own
// conversions, so the draws are the same with every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t bits() { return engine_(); }
  double uniform(double low = 0.0, double high = 1.0);  // [low, high)
  int64_t integer(int64_t low, int64_t high);           // [low, high], inclusive
  bool bernoulli(double p) { return uniform() < p; }

 private:
  std::mt19937_64 engine_;
};

// ---- Datasets ----

// A random-access source of samples. get() must be thread-safe; it throws (naming the file) when a
// sample cannot be read, which the loader reports and skips.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
};

using Color = std::array<uint8_t, 3>;  // RGB

enum class MaskFormat {
  // Colour masks (channels differ) use class_colors; single-channel masks holding only 0 and 255
  // are binary; anything else holds class indices.
  kAuto,
  kIndex,   // pixel value = class index (8- or 16-bit, one channel or equal RGB channels)
  kBinary,  // 0/255 (or any 8-bit grey): values >= 128 -> 1, else 0
  kColor,   // RGB or palette PNG: class i is the pixel colour class_colors[i]
};

struct MaskOptions {
  TORCH_ARG(MaskFormat, format) = MaskFormat::kAuto;
  // Class colour table for colour masks; a colour missing from the table is an error.
  TORCH_ARG(std::vector<Color>, class_colors) = {};
  // A colour for pixels to leave out of the loss (e.g. VOC's border (224, 224, 192)), read as
  // ignore_index.
  TORCH_ARG(std::optional<Color>, ignore_color) = std::nullopt;
  TORCH_ARG(int64_t, ignore_index) = 255;
};

// Reads a mask file as int64 [H, W] class indices. Throws std::runtime_error naming the file when it
// cannot be read or does not fit the format.
torch::Tensor read_mask(const std::string& path, const MaskOptions& options = {});

struct FileDatasetOptions {
  TORCH_ARG(MaskOptions, mask) = {};
  // Mask file stem = image stem + mask_suffix ("_mask": a.jpg <-> a_mask.png).
  TORCH_ARG(std::string, mask_suffix) = "";
};

// Image/mask file pairs. Images: .png .jpg .jpeg .tif .tiff .bmp; masks: .png .tif .tiff .bmp.
class FileDataset : public Dataset {
 public:
  // Pairs every image in `images_dir` with the mask of the same stem in `masks_dir`. Throws
  // std::invalid_argument for a missing or empty folder, an image without a mask (the first few are
  // listed) and two files with one stem.
  static std::shared_ptr<FileDataset> from_folders(const std::string& images_dir, const std::string& masks_dir,
                                                   const FileDatasetOptions& options = {});
  // A CSV list with one "image,mask" pair per line, paths relative to the CSV's folder (absolute
  // paths kept). An optional first line "image,mask" is a header; blank lines are skipped. Throws
  // std::invalid_argument for an unreadable or empty list, a malformed line or missing files.
  static std::shared_ptr<FileDataset> from_csv(const std::string& csv_path, const FileDatasetOptions& options = {});

  FileDataset(std::vector<std::pair<std::string, std::string>> files, FileDatasetOptions options);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  // Throws std::runtime_error naming the file when either file cannot be read or their sizes differ.
  Sample get(int64_t index) const override;
  const std::vector<std::pair<std::string, std::string>>& files() const { return files_; }

 private:
  std::vector<std::pair<std::string, std::string>> files_;  // (image, mask)
  FileDatasetOptions options_;
};

// ---- Synthetic shapes (the demo's data) ----

// Filled circles (class 1), squares (2) and triangles (3), randomly sized, rotated and coloured (each
// class around its own hue), on smooth noisy backgrounds. Sample i depends only on (seed, i); pixel
// values are multiples of 1/255 so that written PNGs read back identically.
struct SyntheticOptions {
  TORCH_ARG(int64_t, count) = 200;
  TORCH_ARG(int64_t, height) = 128;
  TORCH_ARG(int64_t, width) = 128;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, max_shapes) = 4;  // 1..max_shapes per image
  TORCH_ARG(double, noise) = 0.04;     // standard deviation of the per-pixel noise
};

class SyntheticDataset : public Dataset {
 public:
  static constexpr int64_t kClasses = 4;  // background + 3 shapes
  explicit SyntheticDataset(SyntheticOptions options);
  int64_t size() const override { return options_.count(); }
  Sample get(int64_t index) const override;

 private:
  SyntheticOptions options_;
};

// Writes the synthetic samples as <folder>/images/NNNN.png and <folder>/masks/NNNN.png (class
// indices), ready for FileDataset::from_folders. Creates the folders.
void write_synthetic(const std::string& folder, const SyntheticOptions& options);

// ---- Augmentations ----

// Changes a sample in place; image and mask stay aligned (geometry moves both, the mask with nearest
// neighbour and the image with linear interpolation). Draws only from the given Rng.
using Transform = std::function<void(Sample&, Rng&)>;

// Applies the transforms in order.
Transform compose(std::vector<Transform> transforms);
// To exactly height x width.
Transform resize(int64_t height, int64_t width);
// Rescales by a factor drawn from [min_scale, max_scale], pads (image 0, mask `mask_fill`) where the
// result is smaller than the crop, then crops height x width at a random offset.
Transform random_scale_crop(int64_t height, int64_t width, double min_scale = 1.0, double max_scale = 1.0,
                            int64_t mask_fill = 0);
// Pads bottom and right (image 0, mask `mask_fill`) up to multiples of `multiple`, e.g. the model's
// output stride.
Transform pad_to_multiple(int64_t multiple, int64_t mask_fill = 0);
Transform hflip(double p = 0.5);
Transform vflip(double p = 0.5);
// Rotates by k * 90 degrees (counter-clockwise), k drawn from 0..3.
Transform rot90();
// Multiplies brightness and contrast (around the mean grey) by factors drawn from [1 - b, 1 + b]
// and [1 - c, 1 + c], shifts hue by a fraction of the colour circle drawn from [-hue, hue]
// (hue <= 0.5), then clamps to [0, 1]. Image only; expects RGB in [0, 1].
Transform color_jitter(double brightness = 0.2, double contrast = 0.2, double hue = 0.0);
// (image - mean) / std per channel: the encoder's preprocessing (encoder().mean(), encoder().std()).
Transform normalize(std::vector<double> mean, std::vector<double> std);

// ---- Loader ----

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 8;
  TORCH_ARG(bool, shuffle) = true;  // a new order per epoch, drawn from (seed, epoch)
  TORCH_ARG(bool, drop_last) = false;
  TORCH_ARG(uint64_t, seed) = 0;
  // Loading threads; 0 loads in the thread that calls next().
  TORCH_ARG(int64_t, workers) = 2;
  // Batches loaded (or loading) ahead of the consumer; at least 1.
  TORCH_ARG(int64_t, prefetch) = 4;
};

struct Batch {
  torch::Tensor images;          // float [B, 3, H, W]
  torch::Tensor masks;           // int64 [B, H, W]
  std::vector<int64_t> indices;  // dataset indices of the samples
};

struct LoaderSummary {
  int64_t loaded = 0;                      // samples delivered, all epochs
  int64_t skipped = 0;                     // samples skipped because get() threw, all epochs
  std::vector<std::string> skip_reasons;  // distinct errors of the skipped samples (each names its file), sorted
};

// Batches of one epoch in order. Batch k holds the samples at positions [k * batch_size, (k + 1) *
// batch_size) of the epoch's order, minus any that failed to load (a warning names the file once),
// so batches and their contents are the same for every worker count. Destroying the loader or
// starting another epoch mid-epoch stops and joins the workers.
class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderOptions options = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  void start_epoch(int64_t epoch);
  // The next batch of the epoch, or nullopt at its end. Rethrows errors of the transform or of
  // batching (e.g. samples of different sizes in one batch).
  std::optional<Batch> next();
  int64_t batches_per_epoch() const;
  LoaderSummary summary() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Loads one sample and applies the transform with sample_seed(seed, epoch, index): what the loader
// does per sample.
Sample load_sample(const Dataset& dataset, const Transform& transform, int64_t index, uint64_t seed, int64_t epoch);

}  // namespace smp::data
