// smp's UPerNet: a pyramid pooling module on the deepest feature and an FPN over the 1/4 .. 1/16
// features, fused at 1/4 of the input and upsampled by the head.
#pragma once

#include <smp/models.h>

namespace smp {

struct UPerNetOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(int64_t, decoder_channels) = 256;
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
  TORCH_ARG(int64_t, upsampling) = 4;
};

class UPerNetImpl : public SegmentationModelImpl {
 public:
  explicit UPerNetImpl(const UPerNetOptions& options);
};
TORCH_MODULE(UPerNet);

}  // namespace smp
