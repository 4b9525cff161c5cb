// Image files through OpenCV: tensors in, PNG/JPEG/TIFF out.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>

namespace smp::image {

// Reads an image as float [3, H, W] RGB in [0, 1]. Throws naming the file when it cannot be read.
torch::Tensor read_rgb(const std::string& path);
// Writes a [3, H, W] float RGB tensor in [0, 1].
void write_rgb(const std::string& path, const torch::Tensor& rgb);
// Writes a [H, W] integer class-index mask as an 8-bit PNG (values must be 0..255).
void write_mask(const std::string& path, const torch::Tensor& mask);
// A fixed palette colour per class index.
std::array<uint8_t, 3> class_color(int64_t index);

}  // namespace smp::image
