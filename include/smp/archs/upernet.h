// smp's UPerNet: a pyramid pooling module on the deepest feature and an FPN over the 1/4 .. 1/16
// features, fused at 1/4 of the input and upsampled by the head.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_UPERNET_OPTIONS(OPTION, KWARG)                \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5) \
  OPTION(int64_t, decoder_channels, 256)                  \
  OPTION(NormSpec, decoder_use_norm, {})                  \
  OPTION(int64_t, upsampling, 4)
struct UPerNetOptions {
  SMP_OPTIONS(SMP_UPERNET_OPTIONS)
};

class UPerNetImpl : public SegmentationModelImpl {
 public:
  explicit UPerNetImpl(const UPerNetOptions& options);
};
TORCH_MODULE(UPerNet);

}  // namespace smp
