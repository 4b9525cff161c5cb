// The input preprocessing an encoder's pretrained weights expect (smp's get_preprocessing_params and
// get_preprocessing_fn).
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

namespace smp {

struct PreprocessingParams {
  std::string input_space = "RGB";                 // channel order
  std::array<double, 2> input_range = {0.0, 1.0};  // pixel value range before normalization
  std::vector<double> mean;                        // per channel
  std::vector<double> std;
};

// The preprocessing of `encoder_name`'s pretrained weights. "tu-<timm model>" (optionally
// "tu-<model>.<tag>"): the timm model's mean/std (the registry's, that of timm's default tag);
// `pretrained` is ignored, as smp does. smp's own encoders: the named weights' values ("imagenet",
// "ssl", ...). Throws std::invalid_argument for an unknown encoder, timm tag or weights name.
PreprocessingParams get_preprocessing_params(const std::string& encoder_name,
                                             const std::string& pretrained = "imagenet");

// (image - mean) / std per channel, for float RGB images in [0, 1], [3, H, W] or [N, 3, H, W] (any
// channel count matching params.mean); smp::data::normalize applies it to training samples. Throws std::invalid_argument for other shapes, non-float images, or params whose
// input_space / input_range are not RGB / [0, 1].
torch::Tensor preprocess(const torch::Tensor& image, const PreprocessingParams& params);

}  // namespace smp
