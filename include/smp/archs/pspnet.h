// smp's PSPNet: pyramid pooling (1, 2, 3, 6 bins) over the deepest encoder feature only.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_PSPNET_OPTIONS(OPTION, KWARG)                                                      \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 3) /* smp's PSPNet uses three stages */ \
  OPTION(int64_t, psp_out_channels, 512)                                                       \
  OPTION(NormSpec, decoder_use_norm, {})                                                       \
  OPTION(double, psp_dropout, 0.2)                                                             \
  OPTION(int64_t, upsampling, 8)
struct PSPNetOptions {
  SMP_OPTIONS(SMP_PSPNET_OPTIONS)
};

class PSPNetImpl : public SegmentationModelImpl {
 public:
  explicit PSPNetImpl(const PSPNetOptions& options);
};
TORCH_MODULE(PSPNet);

}  // namespace smp
