// smp's PAN (Pyramid Attention Network): a feature pyramid attention block on the deepest feature and
// global attention upsampling blocks back up to 1/4 of the input.
#pragma once

#include <smp/models.h>

namespace smp {

struct PANOptions {
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE("resnet34");
  TORCH_ARG(int64_t, encoder_output_stride) = 16;  // 16 or 32
  TORCH_ARG(int64_t, decoder_channels) = 32;
  TORCH_ARG(std::string, decoder_interpolation) = "bilinear";
  TORCH_ARG(int64_t, upsampling) = 4;
};

class PANImpl : public SegmentationModelImpl {
 public:
  explicit PANImpl(const PANOptions& options);
};
TORCH_MODULE(PAN);

}  // namespace smp
