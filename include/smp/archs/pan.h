// smp's PAN (Pyramid Attention Network): a feature pyramid attention block on the deepest feature and
// global attention upsampling blocks back up to 1/4 of the input.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_PAN_OPTIONS(OPTION, KWARG)                                   \
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE(OPTION, KWARG, "resnet34", 5) \
  OPTION(int64_t, encoder_output_stride, 16) /* 16 or 32 */              \
  OPTION(int64_t, decoder_channels, 32)                                  \
  OPTION(std::string, decoder_interpolation, "bilinear")                 \
  OPTION(int64_t, upsampling, 4)
struct PANOptions {
  SMP_OPTIONS(SMP_PAN_OPTIONS)
};

class PANImpl : public SegmentationModelImpl {
 public:
  explicit PANImpl(const PANOptions& options);
};
TORCH_MODULE(PAN);

}  // namespace smp
