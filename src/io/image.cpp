#include <smp/image.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace smp::image {

torch::Tensor read_rgb(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) throw std::runtime_error(path + ": cannot read image (missing, corrupt or unsupported format)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
  return t.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0);
}

void write_rgb(const std::string& path, const torch::Tensor& rgb) {
  if (rgb.dim() != 3 || rgb.size(0) != 3) throw std::invalid_argument("write_rgb expects a [3, H, W] tensor");
  auto hwc = rgb.detach().to(torch::kCPU).clamp(0, 1).mul(255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(mat, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path, bgr)) throw std::runtime_error(path + ": cannot write image");
}

void write_mask(const std::string& path, const torch::Tensor& mask) {
  if (mask.dim() != 2) throw std::invalid_argument("write_mask expects a [H, W] tensor");
  auto m = mask.detach().to(torch::kCPU);
  if (m.numel() && (m.min().item<int64_t>() < 0 || m.max().item<int64_t>() > 255))
    throw std::invalid_argument("write_mask: class indices must be within 0..255");
  m = m.to(torch::kUInt8).contiguous();
  cv::Mat mat(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_8UC1, m.data_ptr<uint8_t>());
  if (!cv::imwrite(path, mat)) throw std::runtime_error(path + ": cannot write mask");
}

std::array<uint8_t, 3> class_color(int64_t index) {
  static const std::array<std::array<uint8_t, 3>, 8> palette = {{{0, 0, 0},
                                                                  {230, 25, 75},
                                                                  {60, 180, 75},
                                                                  {0, 130, 200},
                                                                  {255, 225, 25},
                                                                  {145, 30, 180},
                                                                  {70, 240, 240},
                                                                  {245, 130, 48}}};
  return palette[static_cast<size_t>(index) % palette.size()];
}

}  // namespace smp::image
