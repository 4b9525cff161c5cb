// Inference on whole images: padding to the encoder's stride, overlapping tiles for large images,
// flip test-time augmentation, class masks and coloured overlays, and a folder driver for `smp predict`.
//
// What is blended: the model's own output as forward() returns it (logits, or the activation's output
// when the model was built with activation=...), the way smp's companion ttach averages raw outputs.
// The flip variants and the tiles are averaged in that same space on both the tiled and the direct
// path, so the two agree wherever one tile covers the image. Apply softmax/sigmoid afterwards when
// probabilities are wanted.
#pragma once

#include <smp/models.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace smp {

enum class FlipTTA {
  kNone,
  kH,   // identity + horizontal flip
  kHV,  // identity + horizontal + vertical + both
};
// "none", "h" or "hv".
FlipTTA parse_flip_tta(const std::string& name);

struct PredictOptions {
  // Window side in pixels; 0 = never tile. Windows are padded to the output stride, so any size works,
  // but a multiple of it wastes nothing.
  TORCH_ARG(int64_t, tile_size) = 1024;
  // Pixels shared by neighbouring windows (0 <= overlap < tile_size).
  TORCH_ARG(int64_t, overlap) = 128;
  // Images with at most this many pixels (H * W) go through one forward pass even when tile_size > 0.
  TORCH_ARG(int64_t, max_direct_pixels) = 2048 * 2048;
  TORCH_ARG(FlipTTA, flip_tta) = FlipTTA::kNone;
  // Windows per forward pass.
  TORCH_ARG(int64_t, batch_size) = 4;
  // How the model runs (the compiled inference path in float32 by default).
  TORCH_ARG(InferenceOptions, inference) = {};
};

// The model's forward on a batch [N, C, h, w] with h, w multiples of the stride -> [N, K, h, w].
using ForwardFn = std::function<torch::Tensor(const torch::Tensor&)>;

// Output [classes, H, W] for one normalised image [C, H, W] on the model's device, via
// model->predict(x, options.inference()) (eval mode, inference mode). Inputs are zero-padded at the bottom and right to a multiple of
// encoder().output_stride() (zero in normalised space is the encoder's mean colour) and the output is
// cropped back. Throws std::invalid_argument for a model built with an argmax activation (indices
// cannot be averaged) or bad options.
torch::Tensor predict_logits(SegmentationModelImpl& model, const torch::Tensor& image, const PredictOptions& options = {});
// The same for any forward function with the given stride (a scripted model, an ensemble).
torch::Tensor predict_logits(const ForwardFn& forward, int64_t stride, const torch::Tensor& image,
                             const PredictOptions& options = {});

// Top-left corners of windows of `tile` pixels along a side of `size` pixels: a step of tile - overlap,
// the last window flush with the far edge; {0} when size <= tile.
std::vector<int64_t> tile_starts(int64_t size, int64_t tile, int64_t overlap);
// Blending weight of a window [h, w]: the outer product of two ramps rising linearly over `overlap`
// pixels from each edge, (d + 1) / (overlap + 1) at distance d, 1 inside. Two windows overlapping by
// `overlap` pixels sum to exactly 1, and edge pixels keep a small positive weight.
torch::Tensor tile_weight(int64_t h, int64_t w, int64_t overlap, const torch::TensorOptions& options = {});

// Class indices [H, W] (int64) from an output [K, H, W]: argmax for K > 1; for one channel,
// output > 0.5 after a sigmoid/softmax activation, output > 0 otherwise.
torch::Tensor class_mask(const torch::Tensor& output, const std::string& activation = "");
// The image [3, H, W] in [0, 1] with each pixel of class c > 0 blended with image::class_color(c) at
// `alpha`; class 0 (background) pixels unchanged.
torch::Tensor render_overlay(const torch::Tensor& rgb, const torch::Tensor& mask, double alpha = 0.5);

// ---- files ----
struct PredictReport {
  std::vector<std::string> segmented;                         // input paths
  std::vector<std::pair<std::string, std::string>> skipped;   // input path, reason
  std::string summary() const;  // "segmented N images, skipped K: a.png, b.png"
};

// The image files of `input` (a file, or a folder's .png/.jpg/.jpeg/.tif/.tiff/.bmp/.webp files, not
// recursive, sorted).
std::vector<std::string> list_images(const std::string& input);
// <output_dir>/<stem>_mask.png and <output_dir>/<stem>_overlay.png.
std::pair<std::string, std::string> output_paths(const std::string& image_path, const std::string& output_dir);

// Segments every image of `input` with the encoder's mean/std normalisation and writes the class-index
// mask and the overlay PNG of each into `output_dir` (created). An image that cannot be read, or
// whose outputs cannot be written, is logged by name and skipped. Throws std::invalid_argument when
// the output folder is the input's folder, when an output would replace an input file, when there are
// no images, or when the model does not take 3 channels.
PredictReport predict_files(SegmentationModelImpl& model, const std::string& input, const std::string& output_dir,
                            const PredictOptions& options = {});

}  // namespace smp
