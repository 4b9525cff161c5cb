// smp's PSPNet: pyramid pooling (1, 2, 3, 6 bins) over the deepest encoder feature only.
#pragma once

#include <smp/models.h>

namespace smp {

struct PSPNetOptions {
  PSPNetOptions() { encoder_depth(3); }  // smp's PSPNet default
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(int64_t, psp_out_channels) = 512;
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
  TORCH_ARG(double, psp_dropout) = 0.2;
  TORCH_ARG(int64_t, upsampling) = 8;
};

class PSPNetImpl : public SegmentationModelImpl {
 public:
  explicit PSPNetImpl(const PSPNetOptions& options);
};
TORCH_MODULE(PSPNet);

}  // namespace smp
