// smp's DeepLabV3 (atrous spatial pyramid pooling on the deepest feature of a dilated encoder) and
// DeepLabV3Plus (the same, fused with the 1/4 feature).
#pragma once

#include <smp/models.h>

namespace smp {

struct DeepLabV3Options {
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE("resnet34");
  TORCH_ARG(int64_t, encoder_output_stride) = 8;  // 8 or 16
  TORCH_ARG(int64_t, decoder_channels) = 256;
  TORCH_ARG(std::vector<int64_t>, decoder_atrous_rates) = std::vector<int64_t>{12, 24, 36};
  TORCH_ARG(bool, decoder_aspp_separable) = false;
  TORCH_ARG(double, decoder_aspp_dropout) = 0.5;
  // None: back to the input size (2^encoder_depth for depth <= 3, else encoder_output_stride).
  TORCH_ARG(std::optional<int64_t>, upsampling) = std::nullopt;
};

class DeepLabV3Impl : public SegmentationModelImpl {
 public:
  explicit DeepLabV3Impl(const DeepLabV3Options& options);
};
TORCH_MODULE(DeepLabV3);

struct DeepLabV3PlusOptions {
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE("resnet34");
  TORCH_ARG(int64_t, encoder_output_stride) = 16;  // 8 or 16
  TORCH_ARG(int64_t, decoder_channels) = 256;
  TORCH_ARG(std::vector<int64_t>, decoder_atrous_rates) = std::vector<int64_t>{12, 24, 36};
  TORCH_ARG(bool, decoder_aspp_separable) = true;
  TORCH_ARG(double, decoder_aspp_dropout) = 0.5;
  TORCH_ARG(int64_t, upsampling) = 4;
};

class DeepLabV3PlusImpl : public SegmentationModelImpl {
 public:
  explicit DeepLabV3PlusImpl(const DeepLabV3PlusOptions& options);
};
TORCH_MODULE(DeepLabV3Plus);

}  // namespace smp
