#include <smp/image.h>
#include <smp/predict.h>

#include <fmt/format.h>

#include <filesystem>

#include "util/log.h"
#include "util/strings.h"

namespace smp {

namespace fs = std::filesystem;

namespace {

void check_options(const PredictOptions& o) {
  if (o.tile_size() < 0) throw std::invalid_argument(fmt::format("tile_size must be >= 0 (0 = never tile), got {}", o.tile_size()));
  if (o.overlap() < 0 || (o.tile_size() > 0 && o.overlap() >= o.tile_size()))
    throw std::invalid_argument(fmt::format(
        "overlap must be at least 0 and smaller than tile_size={}, got {}; lower the overlap or raise the tile size",
        o.tile_size(), o.overlap()));
  if (o.max_direct_pixels() < 0)
    throw std::invalid_argument(fmt::format("max_direct_pixels must be >= 0, got {}", o.max_direct_pixels()));
  if (o.batch_size() < 1) throw std::invalid_argument(fmt::format("batch_size must be >= 1, got {}", o.batch_size()));
}

std::vector<std::vector<int64_t>> flip_dims(FlipTTA tta) {
  switch (tta) {
    case FlipTTA::kNone: return {{}};
    case FlipTTA::kH: return {{}, {3}};
    case FlipTTA::kHV: return {{}, {3}, {2}, {2, 3}};
  }
  throw std::invalid_argument("unknown FlipTTA value");
}

// Pads [N, C, h, w] at the bottom and right to multiples of `stride`, runs every flip variant, undoes
// the flips, averages and crops back to [N, K, h, w].
torch::Tensor forward_padded(const ForwardFn& forward, int64_t stride, const torch::Tensor& x, FlipTTA tta) {
  const auto h = x.size(2), w = x.size(3);
  const auto ph = (stride - h % stride) % stride, pw = (stride - w % stride) % stride;
  const auto padded = (ph || pw) ? torch::constant_pad_nd(x, {0, pw, 0, ph}) : x;
  const auto variants = flip_dims(tta);
  torch::Tensor sum;
  for (const auto& dims : variants) {
    auto out = dims.empty() ? forward(padded) : forward(padded.flip(dims)).flip(dims);
    sum = sum.defined() ? sum + out : out;
  }
  if (variants.size() > 1) sum = sum / static_cast<double>(variants.size());
  return sum.slice(2, 0, h).slice(3, 0, w);
}

// The model's `activation` keyword ("" for None).
std::string activation_of(const SegmentationModelImpl& model) {
  const auto& config = model.config();
  if (!config.is_object() || !config.contains("activation") || !config["activation"].is_string()) return "";
  return config["activation"].get<std::string>();
}

// A normal tensor, so that callers may modify the result in place outside inference mode.
torch::Tensor detach_inference(torch::Tensor t) { return t.is_inference() ? t.clone() : t; }

}  // namespace

FlipTTA parse_flip_tta(const std::string& name) {
  if (name == "none") return FlipTTA::kNone;
  if (name == "h") return FlipTTA::kH;
  if (name == "hv") return FlipTTA::kHV;
  throw std::invalid_argument("flip TTA should be one of none, h, hv; got '" + name + "'");
}

std::vector<int64_t> tile_starts(int64_t size, int64_t tile, int64_t overlap) {
  if (size <= tile) return {0};
  const auto step = tile - overlap;
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + tile < size; s += step) starts.push_back(s);
  starts.push_back(size - tile);
  return starts;
}

torch::Tensor tile_weight(int64_t h, int64_t w, int64_t overlap, const torch::TensorOptions& options) {
  auto ramp = [&](int64_t n) {
    auto i = torch::arange(n, options.dtype(torch::kFloat32));
    auto d = torch::minimum(i, (n - 1) - i);  // distance to the nearer edge
    return ((d + 1) / static_cast<double>(overlap + 1)).clamp_max(1.0);
  };
  return ramp(h).view({h, 1}) * ramp(w).view({1, w});
}

torch::Tensor predict_logits(const ForwardFn& forward, int64_t stride, const torch::Tensor& image,
                             const PredictOptions& options) {
  check_options(options);
  if (image.dim() != 3)
    throw std::invalid_argument(fmt::format("predict expects one image [channels, height, width], got a {}-d tensor; "
                                            "run images one at a time",
                                            image.dim()));
  if (stride < 1) throw std::invalid_argument(fmt::format("stride must be >= 1, got {}", stride));
  torch::NoGradGuard no_grad;
  const auto H = image.size(1), W = image.size(2);
  const auto tile = options.tile_size();
  if (tile == 0 || H * W <= options.max_direct_pixels())
    return detach_inference(forward_padded(forward, stride, image.unsqueeze(0), options.flip_tta())[0]);

  const auto th = std::min(tile, H), tw = std::min(tile, W);
  std::vector<std::pair<int64_t, int64_t>> windows;
  for (auto y : tile_starts(H, tile, options.overlap()))
    for (auto x : tile_starts(W, tile, options.overlap())) windows.emplace_back(y, x);
  torch::Tensor weight = tile_weight(th, tw, options.overlap(), image.options()), sum, weights;
  for (size_t first = 0; first < windows.size(); first += options.batch_size()) {
    const auto last = std::min(windows.size(), first + static_cast<size_t>(options.batch_size()));
    std::vector<torch::Tensor> crops;
    for (auto i = first; i < last; ++i)
      crops.push_back(image.slice(1, windows[i].first, windows[i].first + th).slice(2, windows[i].second,
                                                                                  windows[i].second + tw));
    const auto out = forward_padded(forward, stride, torch::stack(crops), options.flip_tta());
    if (!sum.defined()) {
      sum = torch::zeros({out.size(1), H, W}, out.options());
      weights = torch::zeros({1, H, W}, out.options());
    }
    for (auto i = first; i < last; ++i) {
      const auto [y, x] = windows[i];
      sum.slice(1, y, y + th).slice(2, x, x + tw).add_(out[static_cast<int64_t>(i - first)] * weight);
      weights.slice(1, y, y + th).slice(2, x, x + tw).add_(weight);
    }
  }
  return sum / weights;
}

torch::Tensor predict_logits(SegmentationModelImpl& model, const torch::Tensor& image, const PredictOptions& options) {
  const auto activation = activation_of(model);
  if (activation == "argmax" || activation == "argmax2d")
    throw std::invalid_argument("predict averages model outputs, which class indices from activation=" + activation +
                                " cannot be; build the model without it (class_mask takes the argmax)");
  return predict_logits([&model, &options](const torch::Tensor& x) { return model.predict(x, options.inference()).mask; },
                        model.encoder().output_stride(), image, options);
}

torch::Tensor class_mask(const torch::Tensor& output, const std::string& activation) {
  if (output.dim() != 3)
    throw std::invalid_argument(fmt::format("class_mask expects an output [classes, height, width], got a {}-d tensor",
                                            output.dim()));
  if (output.size(0) > 1) return output.argmax(0);
  const double threshold = (activation == "sigmoid" || activation == "clamp") ? 0.5 : 0.0;
  return (output[0] > threshold).to(torch::kLong);
}

torch::Tensor render_overlay(const torch::Tensor& rgb, const torch::Tensor& mask, double alpha) {
  if (rgb.dim() != 3 || rgb.size(0) != 3)
    throw std::invalid_argument("render_overlay expects an RGB image [3, height, width]");
  if (mask.dim() != 2 || mask.size(0) != rgb.size(1) || mask.size(1) != rgb.size(2))
    throw std::invalid_argument(fmt::format("render_overlay: the mask [{}] does not match the image [{}]",
                                            fmt::join(mask.sizes(), ", "), fmt::join(rgb.sizes(), ", ")));
  if (alpha < 0 || alpha > 1) throw std::invalid_argument(fmt::format("alpha must be within [0, 1], got {}", alpha));
  const auto classes = mask.to(torch::kLong);
  if (classes.numel() && classes.min().item<int64_t>() < 0)
    throw std::invalid_argument("render_overlay: class indices must be >= 0");
  const auto count = classes.numel() ? classes.max().item<int64_t>() + 1 : 1;
  std::vector<float> table;
  for (int64_t c = 0; c < count; ++c)
    for (auto v : image::class_color(c)) table.push_back(static_cast<float>(v) / 255.0f);
  const auto palette = torch::tensor(table).view({count, 3}).to(rgb.options());
  const auto colors = palette.index_select(0, classes.flatten()).view({mask.size(0), mask.size(1), 3}).permute({2, 0, 1});
  return torch::where(classes > 0, rgb * (1 - alpha) + colors * alpha, rgb);
}

std::string PredictReport::summary() const {
  std::vector<std::string> names;
  for (const auto& [path, reason] : skipped) names.push_back(fs::path(path).filename().string());
  auto line = fmt::format("segmented {} image{}, skipped {}", segmented.size(), segmented.size() == 1 ? "" : "s",
                          skipped.size());
  return names.empty() ? line : line + ": " + util::join(names, ", ");
}

std::vector<std::string> list_images(const std::string& input) {
  if (fs::is_regular_file(input)) return {input};
  if (!fs::is_directory(input)) throw std::invalid_argument(input + ": no such image file or folder");
  static const std::set<std::string> extensions = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"};
  std::vector<std::string> images;
  for (const auto& entry : fs::directory_iterator(input))
    if (entry.is_regular_file() && extensions.count(util::to_lower(entry.path().extension().string())))
      images.push_back(entry.path().string());
  std::sort(images.begin(), images.end());
  return images;
}

std::pair<std::string, std::string> output_paths(const std::string& image_path, const std::string& output_dir) {
  const auto stem = fs::path(image_path).stem().string();
  return {(fs::path(output_dir) / (stem + "_mask.png")).string(),
          (fs::path(output_dir) / (stem + "_overlay.png")).string()};
}

PredictReport predict_files(SegmentationModelImpl& model, const std::string& input, const std::string& output_dir,
                            const PredictOptions& options) {
  check_options(options);
  const auto images = list_images(input);
  if (images.empty())
    throw std::invalid_argument(input + ": no images (.png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp) in this folder");
  const auto input_dir = fs::is_directory(input) ? fs::path(input) : fs::path(input).parent_path();
  if (fs::weakly_canonical(fs::absolute(output_dir)) == fs::weakly_canonical(fs::absolute(input_dir)))
    throw std::invalid_argument("the output folder " + output_dir +
                                " is the input folder; choose another output folder so that no input is overwritten");
  const auto in_channels = model.encoder().in_channels();
  if (in_channels != 3)
    throw std::invalid_argument(fmt::format(
        "predict reads RGB images, but the model takes {} input channels; use a model with in_channels=3",
        in_channels));
  const auto activation = activation_of(model);
  const auto params = model.parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const auto mean = torch::tensor(model.encoder().mean()).view({3, 1, 1}).to(device);
  const auto stdev = torch::tensor(model.encoder().std()).view({3, 1, 1}).to(device);
  fs::create_directories(output_dir);

  PredictReport report;
  for (const auto& path : images) {
    try {
      const auto rgb = image::read_rgb(path).to(device);
      const auto mask = class_mask(predict_logits(model, (rgb - mean) / stdev, options), activation);
      const auto [mask_path, overlay_path] = output_paths(path, output_dir);
      image::write_mask(mask_path, mask);
      image::write_rgb(overlay_path, render_overlay(rgb, mask));
      report.segmented.push_back(path);
    } catch (const std::exception& e) {
      log::logger().warn("skipping {}: {}", path, e.what());
      report.skipped.emplace_back(path, e.what());
    }
  }
  return report;
}

}  // namespace smp
