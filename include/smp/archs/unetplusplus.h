// smp's UnetPlusPlus: Unet with nested, densely connected decoder blocks between each encoder level.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_UNETPLUSPLUS_OPTIONS(OPTION, KWARG)                                                \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5)                                      \
  OPTION(NormSpec, decoder_use_norm, {})                                                       \
  OPTION(std::vector<int64_t>, decoder_channels, (std::vector<int64_t>{256, 128, 64, 32, 16})) \
  OPTION(std::string, decoder_attention_type, "") /* "" or "scse" */                           \
  OPTION(std::string, decoder_interpolation, "nearest")
struct UnetPlusPlusOptions {
  SMP_OPTIONS(SMP_UNETPLUSPLUS_OPTIONS)
};

class UnetPlusPlusImpl : public SegmentationModelImpl {
 public:
  explicit UnetPlusPlusImpl(const UnetPlusPlusOptions& options);
};
TORCH_MODULE(UnetPlusPlus);

}  // namespace smp
