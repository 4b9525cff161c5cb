// smp's MAnet: a position-wise attention block on the deepest feature, then multi-scale fusion
// attention blocks (squeeze & excitation on both the upsampled and the skip path) up to the input.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_MANET_OPTIONS(OPTION, KWARG)                                                       \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5)                                      \
  OPTION(NormSpec, decoder_use_norm, {})                                                       \
  OPTION(std::vector<int64_t>, decoder_channels, (std::vector<int64_t>{256, 128, 64, 32, 16})) \
  OPTION(int64_t, decoder_pab_channels, 64)                                                    \
  OPTION(std::string, decoder_interpolation, "nearest")
struct MAnetOptions {
  SMP_OPTIONS(SMP_MANET_OPTIONS)
};

class MAnetImpl : public SegmentationModelImpl {
 public:
  explicit MAnetImpl(const MAnetOptions& options);
};
TORCH_MODULE(MAnet);

}  // namespace smp
