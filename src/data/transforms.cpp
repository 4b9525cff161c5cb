// Seeds, the generator's conversions and the augmentations.
#include <smp/data.h>
#include <smp/preprocessing.h>

#include <cmath>

namespace smp::data {

namespace F = torch::nn::functional;

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void check_probability(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument(std::string(name) + ": p must be within [0, 1], got " + std::to_string(p));
}

void check_size(int64_t height, int64_t width, const char* name) {
  if (height < 1 || width < 1)
    throw std::invalid_argument(std::string(name) + ": height and width must be positive, got " +
                                std::to_string(height) + "x" + std::to_string(width));
}

// Image bilinear (half-pixel centres), mask nearest with the same centres, so both stay aligned.
void resize_sample(Sample& s, int64_t height, int64_t width) {
  if (s.image.size(1) == height && s.image.size(2) == width) return;
  const std::vector<int64_t> size = {height, width};
  s.image = F::interpolate(s.image.unsqueeze(0),
                           F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false))
                .squeeze(0);
  // The op itself: LibTorch's interpolate() warns about align_corners for this mode.
  s.mask = torch::_upsample_nearest_exact2d(s.mask.unsqueeze(0).unsqueeze(0).to(torch::kFloat), size)
               .squeeze(0)
               .squeeze(0)
               .to(torch::kLong);
}

void pad_sample(Sample& s, int64_t top, int64_t bottom, int64_t left, int64_t right, int64_t mask_fill) {
  if (top == 0 && bottom == 0 && left == 0 && right == 0) return;
  s.image = torch::constant_pad_nd(s.image, {left, right, top, bottom}, 0.0);
  s.mask = torch::constant_pad_nd(s.mask, {left, right, top, bottom}, static_cast<double>(mask_fill));
}

// [3, H, W] RGB in [0, 1] -> hue, saturation, value planes.
std::array<torch::Tensor, 3> rgb_to_hsv(const torch::Tensor& rgb) {
  auto r = rgb[0], g = rgb[1], b = rgb[2];
  auto maxc = std::get<0>(rgb.max(0)), minc = std::get<0>(rgb.min(0));
  auto chroma = maxc - minc;
  auto grey = chroma == 0;
  auto safe_chroma = torch::where(grey, torch::ones_like(chroma), chroma);
  auto s = chroma / torch::where(maxc == 0, torch::ones_like(maxc), maxc);
  // Sector of the colour circle by the largest channel, then the position inside it.
  auto h = torch::where(maxc == r, (g - b) / safe_chroma,
                        torch::where(maxc == g, 2.0 + (b - r) / safe_chroma, 4.0 + (r - g) / safe_chroma));
  h = torch::where(grey, torch::zeros_like(h), h);
  h = torch::remainder(h / 6.0, 1.0);
  return {h, s, maxc};
}

torch::Tensor hsv_to_rgb(const torch::Tensor& h, const torch::Tensor& s, const torch::Tensor& v) {
  // Each channel as v - v*s*clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B.
  auto channel = [&](double n) {
    auto k = torch::remainder(n + h * 6.0, 6.0);
    return v - v * s * torch::clamp(torch::minimum(k, 4.0 - k), 0.0, 1.0);
  };
  return torch::stack({channel(5.0), channel(3.0), channel(1.0)});
}

}  // namespace

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(epoch));
  return splitmix64(h ^ (static_cast<uint64_t>(index) * 0xd1342543de82ef95ULL));
}

double Rng::uniform(double low, double high) {
  const double unit = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  return low + (high - low) * unit;
}

int64_t Rng::integer(int64_t low, int64_t high) {
  if (high < low) throw std::invalid_argument("Rng::integer: empty range");
  const auto range = static_cast<uint64_t>(high - low) + 1;
  return low + static_cast<int64_t>(range == 0 ? engine_() : engine_() % range);
}

Transform compose(std::vector<Transform> transforms) {
  for (const auto& t : transforms)
    if (!t) throw std::invalid_argument("compose: empty transform");
  return [transforms = std::move(transforms)](Sample& s, Rng& rng) {
    for (const auto& t : transforms) t(s, rng);
  };
}

Transform resize(int64_t height, int64_t width) {
  check_size(height, width, "resize");
  return [=](Sample& s, Rng&) { resize_sample(s, height, width); };
}

Transform random_scale_crop(int64_t height, int64_t width, double min_scale, double max_scale, int64_t mask_fill) {
  check_size(height, width, "random_scale_crop");
  if (!(min_scale > 0.0 && min_scale <= max_scale))
    throw std::invalid_argument("random_scale_crop: need 0 < min_scale <= max_scale, got " +
                                std::to_string(min_scale) + " and " + std::to_string(max_scale));
  return [=](Sample& s, Rng& rng) {
    const double scale = rng.uniform(min_scale, max_scale);
    const auto h = std::max<int64_t>(1, std::llround(static_cast<double>(s.image.size(1)) * scale));
    const auto w = std::max<int64_t>(1, std::llround(static_cast<double>(s.image.size(2)) * scale));
    resize_sample(s, h, w);
    // Pad evenly around an image smaller than the crop.
    const auto ph = std::max<int64_t>(0, height - h), pw = std::max<int64_t>(0, width - w);
    pad_sample(s, ph / 2, ph - ph / 2, pw / 2, pw - pw / 2, mask_fill);
    const auto y = rng.integer(0, s.image.size(1) - height), x = rng.integer(0, s.image.size(2) - width);
    s.image = s.image.slice(1, y, y + height).slice(2, x, x + width).contiguous();
    s.mask = s.mask.slice(0, y, y + height).slice(1, x, x + width).contiguous();
  };
}

Transform pad_to_multiple(int64_t multiple, int64_t mask_fill) {
  if (multiple < 1) throw std::invalid_argument("pad_to_multiple: multiple must be positive, got " + std::to_string(multiple));
  return [=](Sample& s, Rng&) {
    auto up = [&](int64_t n) { return (n + multiple - 1) / multiple * multiple - n; };
    pad_sample(s, 0, up(s.image.size(1)), 0, up(s.image.size(2)), mask_fill);
  };
}

Transform hflip(double p) {
  check_probability(p, "hflip");
  return [=](Sample& s, Rng& rng) {
    if (!rng.bernoulli(p)) return;
    s.image = s.image.flip({2});
    s.mask = s.mask.flip({1});
  };
}

Transform vflip(double p) {
  check_probability(p, "vflip");
  return [=](Sample& s, Rng& rng) {
    if (!rng.bernoulli(p)) return;
    s.image = s.image.flip({1});
    s.mask = s.mask.flip({0});
  };
}

Transform rot90() {
  return [](Sample& s, Rng& rng) {
    const auto k = rng.integer(0, 3);
    if (k == 0) return;
    s.image = torch::rot90(s.image, k, {1, 2}).contiguous();
    s.mask = torch::rot90(s.mask, k, {0, 1}).contiguous();
  };
}

Transform color_jitter(double brightness, double contrast, double hue) {
  if (!(brightness >= 0.0 && brightness <= 1.0) || !(contrast >= 0.0 && contrast <= 1.0))
    throw std::invalid_argument("color_jitter: brightness and contrast must be within [0, 1]");
  if (!(hue >= 0.0 && hue <= 0.5)) throw std::invalid_argument("color_jitter: hue must be within [0, 0.5]");
  return [=](Sample& s, Rng& rng) {
    if (s.image.size(0) != 3) throw std::invalid_argument("color_jitter expects an RGB image [3, H, W]");
    const double b = rng.uniform(1.0 - brightness, 1.0 + brightness);
    const double c = rng.uniform(1.0 - contrast, 1.0 + contrast);
    const double shift = rng.uniform(-hue, hue);
    auto img = (s.image * b).clamp(0.0, 1.0);
    if (c != 1.0) {
      const auto grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).mean();
      img = ((img - grey) * c + grey).clamp(0.0, 1.0);
    }
    if (shift != 0.0) {
      auto [h, sat, v] = rgb_to_hsv(img);
      img = hsv_to_rgb(torch::remainder(h + shift, 1.0), sat, v).clamp(0.0, 1.0);
    }
    s.image = img;
  };
}

Transform normalize(std::vector<double> mean, std::vector<double> std) {
  if (mean.empty() || mean.size() != std.size())
    throw std::invalid_argument("normalize: mean and std need one value per channel, got " +
                                std::to_string(mean.size()) + " and " + std::to_string(std.size()));
  for (double v : std)
    if (!(v > 0.0)) throw std::invalid_argument("normalize: std values must be positive");
  PreprocessingParams params;
  params.mean = std::move(mean);
  params.std = std::move(std);
  return [params = std::move(params)](Sample& s, Rng&) {
    const auto channels = static_cast<size_t>(s.image.size(0));
    if (channels != params.mean.size())
      throw std::invalid_argument("normalize: " + std::to_string(params.mean.size()) +
                                  " mean/std values for an image with " + std::to_string(channels) + " channels");
    s.image = preprocess(s.image, params);
  };
}

}  // namespace smp::data
