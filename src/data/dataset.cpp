// Mask decoding and the file-backed dataset (folders matched by stem, CSV lists).
#include <smp/data.h>
#include <smp/image.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "util/log.h"
#include "util/strings.h"

namespace smp::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"};
const std::vector<std::string> kMaskExtensions = {".png", ".tif", ".tiff", ".bmp"};
constexpr size_t kListed = 5;  // names listed in an error message

std::runtime_error file_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

std::string listed(const std::vector<std::string>& names) {
  std::vector<std::string> head(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(std::min(names.size(), kListed)));
  return util::join(head, ", ") + (names.size() > kListed ? ", ..." : "");
}

bool channels_equal(const cv::Mat& rgb) {
  std::vector<cv::Mat> planes;
  cv::split(rgb, planes);
  return cv::countNonZero(planes[0] != planes[1]) == 0 && cv::countNonZero(planes[0] != planes[2]) == 0;
}

torch::Tensor from_grey(const cv::Mat& grey) {
  cv::Mat m;
  grey.convertTo(m, CV_32S);
  return torch::from_blob(m.data, {m.rows, m.cols}, torch::kInt32).to(torch::kLong);
}

uint32_t color_key(const Color& c) { return (uint32_t{c[0]} << 16) | (uint32_t{c[1]} << 8) | c[2]; }

torch::Tensor from_colors(const std::string& path, const cv::Mat& rgb, const MaskOptions& options) {
  std::unordered_map<uint32_t, int64_t> table;
  const auto& colors = options.class_colors();
  // The first class wins a colour listed twice.
  for (size_t i = 0; i < colors.size(); ++i) table.emplace(color_key(colors[i]), static_cast<int64_t>(i));
  if (options.ignore_color()) table.emplace(color_key(*options.ignore_color()), options.ignore_index());
  auto out = torch::empty({rgb.rows, rgb.cols}, torch::kLong);
  auto* dst = out.data_ptr<int64_t>();
  for (int r = 0; r < rgb.rows; ++r) {
    const auto* row = rgb.ptr<cv::Vec3b>(r);
    for (int c = 0; c < rgb.cols; ++c) {
      const uint32_t key = (uint32_t{row[c][0]} << 16) | (uint32_t{row[c][1]} << 8) | row[c][2];
      auto it = table.find(key);
      if (it == table.end())
        throw file_error(path, "colour (" + std::to_string(row[c][0]) + ", " + std::to_string(row[c][1]) + ", " +
                                   std::to_string(row[c][2]) + ") at row " + std::to_string(r) + ", column " +
                                   std::to_string(c) + " is not in the class colour table");
      *dst++ = it->second;
    }
  }
  return out;
}

std::vector<fs::path> files_with(const std::string& dir, const std::vector<std::string>& extensions,
                                 const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument(what + " folder '" + dir + "' does not exist or is not a folder");
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto& p = entry.path();
    if (!entry.is_regular_file() || p.filename().string().rfind('.', 0) == 0) continue;
    const auto ext = util::to_lower(p.extension().string());
    if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end()) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  if (out.empty())
    throw std::invalid_argument(what + " folder '" + dir + "' holds no " + what + " files (" +
                                util::join(extensions, ", ") + ")");
  return out;
}

// stem -> path; two files with one stem are ambiguous.
std::map<std::string, fs::path> by_stem(const std::vector<fs::path>& files, const std::string& dir) {
  std::map<std::string, fs::path> out;
  for (const auto& p : files) {
    auto [it, added] = out.emplace(p.stem().string(), p);
    if (!added)
      throw std::invalid_argument("'" + it->second.filename().string() + "' and '" + p.filename().string() +
                                  "' in '" + dir + "' share the stem '" + it->first +
                                  "'; keep one file per stem");
  }
  return out;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  auto t = s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  return t;
}

}  // namespace

torch::Tensor read_mask(const std::string& path, const MaskOptions& options) {
  cv::Mat raw = cv::imread(path, cv::IMREAD_UNCHANGED);
  if (raw.empty()) throw file_error(path, "cannot read mask (missing, corrupt or unsupported format)");
  if (raw.depth() != CV_8U && raw.depth() != CV_16U)
    throw file_error(path, "mask must be an 8- or 16-bit image");
  if (raw.channels() != 1 && raw.channels() != 3 && raw.channels() != 4)
    throw file_error(path, "mask has " + std::to_string(raw.channels()) + " channels; expected 1, 3 or 4");

  cv::Mat grey, rgb;  // exactly one is set
  if (raw.channels() == 1) {
    grey = raw;
  } else {
    cv::cvtColor(raw, rgb, raw.channels() == 4 ? cv::COLOR_BGRA2RGB : cv::COLOR_BGR2RGB);
  }
  auto format = options.format();
  const auto& colors = options.class_colors();
  if (format == MaskFormat::kAuto) {
    if (!rgb.empty() && !colors.empty()) {
      format = MaskFormat::kColor;
    } else if (!rgb.empty() && !channels_equal(rgb)) {
      throw file_error(path, "mask is a colour image; give the class colour table (MaskOptions::class_colors) or "
                             "save masks as class indices");
    } else {
      if (grey.empty()) cv::extractChannel(rgb, grey, 0);
      const bool binary = grey.depth() == CV_8U && cv::countNonZero((grey != 0) & (grey != 255)) == 0 &&
                          cv::countNonZero(grey) > 0;
      format = binary ? MaskFormat::kBinary : MaskFormat::kIndex;
    }
  }
  switch (format) {
    case MaskFormat::kColor: {
      if (colors.empty())
        throw std::invalid_argument("MaskFormat::kColor needs the class colour table (MaskOptions::class_colors)");
      if (raw.depth() != CV_8U) throw file_error(path, "colour masks must be 8-bit");
      if (rgb.empty()) cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
      return from_colors(path, rgb, options);
    }
    case MaskFormat::kBinary:
    case MaskFormat::kIndex: {
      if (grey.empty()) {
        if (!channels_equal(rgb))
          throw file_error(path, "mask is a colour image; expected one channel (or equal RGB channels) of class "
                                 "indices");
        cv::extractChannel(rgb, grey, 0);
      }
      if (format == MaskFormat::kIndex) return from_grey(grey);
      if (grey.depth() != CV_8U) throw file_error(path, "binary masks must be 8-bit (0 and 255)");
      return from_grey((grey >= 128) / 255);
    }
    case MaskFormat::kAuto:
      break;
  }
  throw std::logic_error("read_mask: unhandled mask format");
}

FileDataset::FileDataset(std::vector<std::pair<std::string, std::string>> files, FileDatasetOptions options)
    : files_(std::move(files)), options_(std::move(options)) {
  if (files_.empty()) throw std::invalid_argument("FileDataset needs at least one (image, mask) pair");
}

std::shared_ptr<FileDataset> FileDataset::from_folders(const std::string& images_dir, const std::string& masks_dir,
                                                       const FileDatasetOptions& options) {
  const auto images = by_stem(files_with(images_dir, kImageExtensions, "image"), images_dir);
  const auto masks = by_stem(files_with(masks_dir, kMaskExtensions, "mask"), masks_dir);
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::string> unmatched;
  std::set<std::string> used;
  for (const auto& [stem, image] : images) {
    auto it = masks.find(stem + options.mask_suffix());
    if (it == masks.end()) {
      unmatched.push_back(image.filename().string());
      continue;
    }
    used.insert(it->first);
    pairs.emplace_back(image.string(), it->second.string());
  }
  if (!unmatched.empty())
    throw std::invalid_argument(std::to_string(unmatched.size()) + " of " + std::to_string(images.size()) +
                                " images have no mask in '" + masks_dir + "' (masks are matched by file stem" +
                                (options.mask_suffix().empty() ? "" : " + '" + options.mask_suffix() + "'") +
                                "): " + listed(unmatched));
  if (used.size() < masks.size())
    log::logger().warn("{} of {} masks in '{}' have no image and are ignored", masks.size() - used.size(),
                       masks.size(), masks_dir);
  return std::make_shared<FileDataset>(std::move(pairs), options);
}

std::shared_ptr<FileDataset> FileDataset::from_csv(const std::string& csv_path, const FileDatasetOptions& options) {
  std::ifstream in(csv_path);
  if (!in) throw std::invalid_argument("cannot read the CSV list '" + csv_path + "'");
  const auto base = fs::path(csv_path).parent_path();
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() ? fs::path(p) : base / p; };

  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::string> missing;
  std::string line;
  bool first = true;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (trim(line).empty()) continue;
    std::vector<std::string> fields;
    std::string field;
    for (std::istringstream ls(line); std::getline(ls, field, ',');) fields.push_back(trim(field));
    if (fields.size() != 2 || fields[0].empty() || fields[1].empty())
      throw std::invalid_argument(csv_path + ":" + std::to_string(number) + ": expected 'image,mask', got '" +
                                  trim(line) + "'");
    const bool header = first && util::to_lower(fields[0]) == "image" && util::to_lower(fields[1]) == "mask";
    first = false;
    if (header) continue;
    const auto image = resolve(fields[0]), mask = resolve(fields[1]);
    for (const auto& p : {image, mask})
      if (!fs::is_regular_file(p)) missing.push_back(p.string());
    pairs.emplace_back(image.string(), mask.string());
  }
  if (pairs.empty()) throw std::invalid_argument("the CSV list '" + csv_path + "' holds no image,mask lines");
  if (!missing.empty())
    throw std::invalid_argument(std::to_string(missing.size()) + " files listed in '" + csv_path +
                                "' do not exist: " + listed(missing));
  return std::make_shared<FileDataset>(std::move(pairs), options);
}

Sample FileDataset::get(int64_t index) const {
  const auto& [image_path, mask_path] = files_.at(static_cast<size_t>(index));
  Sample s;
  s.image = image::read_rgb(image_path);
  s.mask = read_mask(mask_path, options_.mask());
  s.name = image_path;
  if (s.image.size(1) != s.mask.size(0) || s.image.size(2) != s.mask.size(1))
    throw file_error(mask_path, "mask is " + std::to_string(s.mask.size(0)) + "x" + std::to_string(s.mask.size(1)) +
                                    " but its image '" + image_path + "' is " + std::to_string(s.image.size(1)) + "x" +
                                    std::to_string(s.image.size(2)));
  return s;
}

}  // namespace smp::data
