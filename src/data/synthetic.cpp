// Synthetic shapes for the demo. Each class has its own shape and a hue band, so a small network
// learns it in minutes; backgrounds are low-saturation textures with noise so it is not trivial.
#include <smp/data.h>
#include <smp/image.h>

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>

namespace smp::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

double gaussian(Rng& rng) {
  const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// HSV in [0, 1] -> RGB in [0, 1].
cv::Scalar hsv_color(double h, double s, double v) {
  auto channel = [&](double n) {
    const double k = std::fmod(n + h * 6.0, 6.0);
    return v - v * s * std::clamp(std::min(k, 4.0 - k), 0.0, 1.0);
  };
  return cv::Scalar(channel(5.0), channel(3.0), channel(1.0));
}

std::vector<cv::Point> polygon(double cx, double cy, double radius, double angle, int corners) {
  std::vector<cv::Point> points;
  for (int i = 0; i < corners; ++i) {
    const double a = angle + 2.0 * kPi * i / corners;
    points.emplace_back(static_cast<int>(std::lround(cx + radius * std::cos(a))),
                        static_cast<int>(std::lround(cy + radius * std::sin(a))));
  }
  return points;
}

}  // namespace

SyntheticDataset::SyntheticDataset(SyntheticOptions options) : options_(std::move(options)) {
  if (options_.count() < 1) throw std::invalid_argument("SyntheticOptions: count must be positive");
  if (options_.height() < 16 || options_.width() < 16)
    throw std::invalid_argument("SyntheticOptions: height and width must be at least 16");
  if (options_.max_shapes() < 1) throw std::invalid_argument("SyntheticOptions: max_shapes must be positive");
  if (options_.noise() < 0.0) throw std::invalid_argument("SyntheticOptions: noise must not be negative");
}

Sample SyntheticDataset::get(int64_t index) const {
  if (index < 0 || index >= options_.count())
    throw std::out_of_range("SyntheticDataset: index " + std::to_string(index) + " out of range");
  Rng rng(sample_seed(options_.seed(), 0, index));
  const int h = static_cast<int>(options_.height()), w = static_cast<int>(options_.width());

  // Background: a grey level with a small colour cast plus a coarse random texture.
  const double level = rng.uniform(0.25, 0.75);
  cv::Mat image(h, w, CV_32FC3, cv::Scalar(level + rng.uniform(-0.08, 0.08), level + rng.uniform(-0.08, 0.08),
                                           level + rng.uniform(-0.08, 0.08)));
  cv::Mat coarse(std::max(2, h / 16), std::max(2, w / 16), CV_32FC3), texture;
  for (int r = 0; r < coarse.rows; ++r)
    for (int c = 0; c < coarse.cols; ++c) {
      const float t = static_cast<float>(rng.uniform(-0.12, 0.12));
      coarse.at<cv::Vec3f>(r, c) = cv::Vec3f(t, t, t) + cv::Vec3f(static_cast<float>(rng.uniform(-0.03, 0.03)),
                                                                  static_cast<float>(rng.uniform(-0.03, 0.03)),
                                                                  static_cast<float>(rng.uniform(-0.03, 0.03)));
    }
  cv::resize(coarse, texture, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  image += texture;
  cv::Mat mask(h, w, CV_8UC1, cv::Scalar(0));

  // Shapes; a later one covers an earlier one in both the image and the mask.
  const double side = std::min(h, w);
  const auto shapes = rng.integer(1, options_.max_shapes());
  for (int64_t i = 0; i < shapes; ++i) {
    const auto cls = static_cast<int>(rng.integer(1, 3));
    const double radius = side * rng.uniform(0.08, 0.2);
    const double cx = rng.uniform(radius * 0.5, w - radius * 0.5), cy = rng.uniform(radius * 0.5, h - radius * 0.5);
    const double hue = std::fmod((cls - 1) / 3.0 + rng.uniform(-0.07, 0.07) + 1.0, 1.0);
    const auto color = hsv_color(hue, rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0));
    const double angle = rng.uniform(0.0, 2.0 * kPi);
    if (cls == 1) {
      const cv::Point centre(static_cast<int>(std::lround(cx)), static_cast<int>(std::lround(cy)));
      const int r = static_cast<int>(std::lround(radius));
      cv::circle(image, centre, r, color, cv::FILLED, cv::LINE_8);
      cv::circle(mask, centre, r, cv::Scalar(cls), cv::FILLED, cv::LINE_8);
    } else {
      // Square: corners on the circle of `radius`; triangle: a slightly larger circle for similar area.
      const auto points = cls == 2 ? polygon(cx, cy, radius, angle, 4) : polygon(cx, cy, radius * 1.2, angle, 3);
      const std::vector<std::vector<cv::Point>> polys = {points};
      cv::fillPoly(image, polys, color, cv::LINE_8);
      cv::fillPoly(mask, polys, cv::Scalar(cls), cv::LINE_8);
    }
  }

  if (options_.noise() > 0.0) {
    auto* p = image.ptr<float>();
    for (size_t i = 0, n = image.total() * 3; i < n; ++i) p[i] += static_cast<float>(options_.noise() * gaussian(rng));
  }
  cv::Mat bytes;
  image.convertTo(bytes, CV_8UC3, 255.0);  // rounds and saturates
  Sample s;
  s.image = torch::from_blob(bytes.data, {h, w, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat).div_(255.0);
  s.mask = torch::from_blob(mask.data, {h, w}, torch::kUInt8).to(torch::kLong);
  char name[32];
  std::snprintf(name, sizeof(name), "%05lld", static_cast<long long>(index));
  s.name = name;
  return s;
}

void write_synthetic(const std::string& folder, const SyntheticOptions& options) {
  SyntheticDataset dataset(options);
  namespace fs = std::filesystem;
  const auto images = fs::path(folder) / "images", masks = fs::path(folder) / "masks";
  fs::create_directories(images);
  fs::create_directories(masks);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const auto s = dataset.get(i);
    image::write_rgb((images / (s.name + ".png")).string(), s.image);
    image::write_mask((masks / (s.name + ".png")).string(), s.mask);
  }
}

}  // namespace smp::data
