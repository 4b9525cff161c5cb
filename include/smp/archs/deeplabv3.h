// smp's DeepLabV3 (atrous spatial pyramid pooling on the deepest feature of a dilated encoder) and
// DeepLabV3Plus (the same, fused with the 1/4 feature).
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_DEEPLABV3_OPTIONS(OPTION, KWARG)                                                       \
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE(OPTION, KWARG, "resnet34", 5)                           \
  OPTION(int64_t, encoder_output_stride, 8) /* 8 or 16 */                                          \
  OPTION(int64_t, decoder_channels, 256)                                                           \
  OPTION(std::vector<int64_t>, decoder_atrous_rates, (std::vector<int64_t>{12, 24, 36}))           \
  OPTION(bool, decoder_aspp_separable, false)                                                      \
  OPTION(double, decoder_aspp_dropout, 0.5)                                                        \
  /* None: back to the input size (2^encoder_depth for depth <= 3, else encoder_output_stride). */ \
  OPTION(std::optional<int64_t>, upsampling, std::nullopt)
struct DeepLabV3Options {
  SMP_OPTIONS(SMP_DEEPLABV3_OPTIONS)
};

class DeepLabV3Impl : public SegmentationModelImpl {
 public:
  explicit DeepLabV3Impl(const DeepLabV3Options& options);
};
TORCH_MODULE(DeepLabV3);

#define SMP_DEEPLABV3PLUS_OPTIONS(OPTION, KWARG)                                         \
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE(OPTION, KWARG, "resnet34", 5)                 \
  OPTION(int64_t, encoder_output_stride, 16) /* 8 or 16 */                               \
  OPTION(int64_t, decoder_channels, 256)                                                 \
  OPTION(std::vector<int64_t>, decoder_atrous_rates, (std::vector<int64_t>{12, 24, 36})) \
  OPTION(bool, decoder_aspp_separable, true)                                             \
  OPTION(double, decoder_aspp_dropout, 0.5)                                              \
  OPTION(int64_t, upsampling, 4)
struct DeepLabV3PlusOptions {
  SMP_OPTIONS(SMP_DEEPLABV3PLUS_OPTIONS)
};

class DeepLabV3PlusImpl : public SegmentationModelImpl {
 public:
  explicit DeepLabV3PlusImpl(const DeepLabV3PlusOptions& options);
};
TORCH_MODULE(DeepLabV3Plus);

}  // namespace smp
